"""invite link grants: what the users service knows of reusable invite links, for the link
join page (only the token's hash; the uses counted here, under a row lock)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invite_link_grants",
        sa.Column("link_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=128), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("allowed_domain", sa.String(length=253), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("link_id", name="pk_invite_link_grants"),
        sa.UniqueConstraint("token_hash", name="uq_invite_link_grants_token_hash"),
    )


def downgrade() -> None:
    # The accounts made through links stay; only what was known of the links goes.
    op.drop_table("invite_link_grants")
