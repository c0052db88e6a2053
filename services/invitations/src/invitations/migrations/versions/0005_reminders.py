"""reminders: one per invitation, due some time before its expiry

Invitations already out get none: they were issued under no promise of one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("invitations", sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "invitations", sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index("ix_invitations_remind_at", "invitations", ["remind_at"])


def downgrade() -> None:
    op.drop_index("ix_invitations_remind_at", table_name="invitations")
    # A batch: SQLite before 3.35 cannot drop a column in place; PostgreSQL alters directly.
    with op.batch_alter_table("invitations") as batch:
        batch.drop_column("reminded_at")
        batch.drop_column("remind_at")
