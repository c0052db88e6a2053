"""roles on invite: the roles an invitation's grant gives the account created by joining

Grants learnt before carry `["user"]`, the only role joining gave until now.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The server default fills the rows already there, on SQLite and PostgreSQL alike.
    op.add_column(
        "invitation_grants",
        sa.Column("roles", sa.JSON(), nullable=False, server_default=sa.text("'[\"user\"]'")),
    )


def downgrade() -> None:
    # Undone, every open link makes a plain user again, as joining did before.
    # A batch: SQLite before 3.35 cannot drop a column in place; PostgreSQL alters directly.
    with op.batch_alter_table("invitation_grants") as batch:
        batch.drop_column("roles")
