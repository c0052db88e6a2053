"""roles on invite: what the account created by joining gets

Invitations made before carry `["user"]`, the only role joining gave until now.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "invitations",
        sa.Column("roles", sa.JSON(), nullable=False, server_default=sa.text("'[\"user\"]'")),
    )


def downgrade() -> None:
    # A batch: SQLite before 3.35 cannot drop a column in place; PostgreSQL alters directly.
    with op.batch_alter_table("invitations") as batch:
        batch.drop_column("roles")
