"""pinned public keys: the key each participant's browser first used in a summit, or the
one a coordinator accepted since

Revision ID: 0003_key_pins
Revises: 0002_audit_head

Participants already in a call are pinned to the key they posted.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_key_pins"
down_revision = "0002_audit_head"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "e2ee_pins",
        sa.Column("participant_id", sa.String(length=32), nullable=False),
        sa.Column("summit_id", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.String(length=100), nullable=False),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["summit_id"], ["summits.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("participant_id"),
    )
    with op.batch_alter_table("e2ee_pins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_e2ee_pins_summit_id"), ["summit_id"], unique=False)
    op.execute(
        "INSERT INTO e2ee_pins (participant_id, summit_id, public_key, pinned_at) "
        "SELECT participant_id, summit_id, public_key, posted_at FROM e2ee_public_keys"
    )


def downgrade() -> None:
    with op.batch_alter_table("e2ee_pins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_e2ee_pins_summit_id"))
    op.drop_table("e2ee_pins")
