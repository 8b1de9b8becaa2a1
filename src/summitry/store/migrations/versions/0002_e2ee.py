"""end-to-end encryption: public keys, key epochs, wrapped keys

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "e2ee_public_keys",
        sa.Column("participant_id", sa.String(length=32), nullable=False),
        sa.Column("summit_id", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.String(length=100), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["summit_id"], ["summits.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("participant_id"),
    )
    with op.batch_alter_table("e2ee_public_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_e2ee_public_keys_summit_id"), ["summit_id"], unique=False
        )
    op.create_table(
        "e2ee_epochs",
        sa.Column("summit_id", sa.String(length=32), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("made_by", sa.String(length=32), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("in_force_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["summit_id"], ["summits.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("summit_id", "epoch"),
    )
    op.create_table(
        "e2ee_wrapped_keys",
        sa.Column("summit_id", sa.String(length=32), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.String(length=32), nullable=False),
        sa.Column("sender_id", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.String(length=100), nullable=False),
        sa.Column("wrapped", sa.String(length=400), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["summit_id"], ["summits.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("summit_id", "epoch", "recipient_id"),
    )


def downgrade() -> None:
    op.drop_table("e2ee_wrapped_keys")
    op.drop_table("e2ee_epochs")
    with op.batch_alter_table("e2ee_public_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_e2ee_public_keys_summit_id"))
    op.drop_table("e2ee_public_keys")
