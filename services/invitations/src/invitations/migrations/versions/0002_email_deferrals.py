"""email deferrals: when the mailer tries again, and the newest deferral applied

The new status `retrying` needs no change: `status` is a plain string column, without a CHECK
constraint or a database enum.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "invitations", sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "invitations", sa.Column("deferred_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    # Older code knows no `retrying`: those invitations wait as pending, which they are.
    op.execute("UPDATE invitations SET status = 'pending' WHERE status = 'retrying'")
    # A batch: SQLite before 3.35 cannot drop a column in place; PostgreSQL alters directly.
    with op.batch_alter_table("invitations") as batch:
        batch.drop_column("deferred_at")
        batch.drop_column("next_attempt_at")
