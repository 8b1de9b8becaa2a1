"""the audit trail's head in the summit row, and each record's signature

Revision ID: 0002_audit_head
Revises: 0002

The head of a summit that already has records is its newest record. Records written
before this revision carry no signature, and verifying their trail says so.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_audit_head"
down_revision = "0002"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    # Plain ADD COLUMN: a batch copy of `summits` on SQLite would drop the table, and with
    # foreign keys on that deletes every side and participant. The defaults stay.
    op.add_column(
        "summits", sa.Column("audit_seq", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "summits",
        sa.Column("audit_head", sa.String(length=64), nullable=False, server_default=GENESIS),
    )
    op.add_column("audit_records", sa.Column("signature", sa.String(length=100), nullable=True))
    op.execute(
        """
        UPDATE summits SET
            audit_seq = (SELECT max(seq) FROM audit_records WHERE summit_id = summits.id),
            audit_head = (
                SELECT hash FROM audit_records
                WHERE summit_id = summits.id
                ORDER BY seq DESC LIMIT 1
            )
        WHERE EXISTS (SELECT 1 FROM audit_records WHERE summit_id = summits.id)
        """
    )


def downgrade() -> None:
    op.drop_column("audit_records", "signature")
    op.drop_column("summits", "audit_head")
    op.drop_column("summits", "audit_seq")
