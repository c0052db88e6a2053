"""CSV imports: a file of addresses invited as a background job, row by row

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invitation_imports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("inviter_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("processed_rows", sa.Integer(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("quota_day", sa.String(length=10), nullable=False),
        sa.Column("ttl_hours", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("notify_inviter", sa.Boolean(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_invitation_imports"),
    )
    op.create_index(
        "ix_invitation_imports_status_created", "invitation_imports", ["status", "created_at"]
    )
    op.create_table(
        "invitation_import_rows",
        sa.Column("import_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("given", sa.String(length=1000), nullable=False),
        sa.Column("name", sa.String(length=1000), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=30), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("invitation_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("import_id", "number", name="pk_invitation_import_rows"),
    )


def downgrade() -> None:
    op.drop_table("invitation_import_rows")
    op.drop_index("ix_invitation_imports_status_created", table_name="invitation_imports")
    op.drop_table("invitation_imports")
