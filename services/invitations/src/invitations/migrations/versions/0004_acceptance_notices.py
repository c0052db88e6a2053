"""acceptance notices: the inviter may be emailed when an invitation is accepted

Invitations already out notify their inviter (the default); members keep their address as
written, learnt again from their next UserUpdated (until then the lower-cased key serves).

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
    op.add_column(
        "invitations",
        sa.Column("notify_inviter", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column("members", sa.Column("email", sa.String(320), nullable=True))
    op.create_table(
        "inviter_settings",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("notify_on_acceptance", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_inviter_settings"),
    )


def downgrade() -> None:
    op.drop_table("inviter_settings")
    # A batch: SQLite before 3.35 cannot drop a column in place; PostgreSQL alters directly.
    with op.batch_alter_table("members") as batch:
        batch.drop_column("email")
    with op.batch_alter_table("invitations") as batch:
        batch.drop_column("notify_inviter")
