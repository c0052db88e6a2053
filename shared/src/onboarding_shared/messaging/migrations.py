"""Alembic operations for the kit's own tables, so every service's first migration creates
the same outbox and inbox (schema version 1 of both).

The tables are written out here a second time (outbox.py and inbox.py declare them for the
code) on purpose: a migration is history and must create version 1 for ever, whatever the
live definitions become; deriving it from them would make an old migration change meaning.
That the two agree is checked, not assumed: every service's migration tests run Alembic's
``check`` (no difference between the migrated schema and the metadata)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def create_messaging_tables() -> None:
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("routing_key", sa.String(length=255), nullable=False),
        sa.Column("correlation_id", sa.String(length=200), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
    )
    op.create_index("ix_outbox_due", "outbox", ["published_at", "next_attempt_at"])
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
    )


def drop_messaging_tables() -> None:
    op.drop_table("inbox")
    op.drop_index("ix_outbox_due", table_name="outbox")
    op.drop_table("outbox")
