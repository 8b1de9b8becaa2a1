"""summits, sides, participants, readouts, audit

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("summit_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("summit_id", "seq"),
    )
    op.create_table(
        "summits",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("slug", sa.String(length=80), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("agenda", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned_seconds", sa.Integer(), nullable=False),
        sa.Column("public_seconds", sa.Integer(), nullable=False),
        sa.Column("lobby_lead_seconds", sa.Integer(), nullable=False),
        sa.Column("end_grace_seconds", sa.Integer(), nullable=False),
        sa.Column("go_live_consent", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("consents", sa.JSON(), nullable=False),
        sa.Column("public_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("private_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("empty_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    with op.batch_alter_table("summits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_summits_phase"), ["phase"], unique=False)

    op.create_table(
        "sides",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("summit_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["summit_id"], ["summits.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("summit_id", "position"),
    )
    with op.batch_alter_table("sides", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sides_summit_id"), ["summit_id"], unique=False)

    op.create_table(
        "participants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("summit_id", sa.String(length=32), nullable=False),
        sa.Column("side_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("name_key", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("presence", sa.String(length=16), nullable=False),
        sa.Column("grant_id", sa.String(length=32), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["side_id"], ["sides.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["summit_id"], ["summits.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("side_id", "name_key"),
    )
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_participants_summit_id"), ["summit_id"], unique=False)

    op.create_table(
        "readouts",
        sa.Column("summit_id", sa.String(length=32), nullable=False),
        sa.Column("side_id", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("embargo_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["side_id"], ["sides.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["summit_id"], ["summits.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("summit_id", "side_id"),
    )


def downgrade() -> None:
    op.drop_table("readouts")
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_participants_summit_id"))

    op.drop_table("participants")
    with op.batch_alter_table("sides", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sides_summit_id"))

    op.drop_table("sides")
    with op.batch_alter_table("summits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_summits_phase"))

    op.drop_table("summits")
    op.drop_table("audit_records")
