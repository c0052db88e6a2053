"""known accounts and pending logins

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "known_accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("username_key", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_known_accounts"),
    )
    op.create_index("ix_known_accounts_email_key", "known_accounts", ["email_key"])
    op.create_index("ix_known_accounts_username_key", "known_accounts", ["username_key"])
    op.create_table(
        "pending_logins",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("logged_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "value", name="pk_pending_logins"),
    )
    op.create_index("ix_pending_logins_received", "pending_logins", ["received_at"])


def downgrade() -> None:
    op.drop_table("pending_logins")
    op.drop_table("known_accounts")
