"""Tables of the mailer database, and the mapping of the domain classes onto them."""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, Uuid

from mailer.domain.model import Email, EmailStatus
from onboarding_shared.db import UtcDateTime, string_enum
from onboarding_shared.orm import service_tables

tables = service_tables()
metadata, messaging = tables.metadata, tables.messaging

emails = Table(
    "emails",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("source_event_id", Uuid, nullable=False, unique=True),
    Column("kind", String(50), nullable=False),
    Column("reference_id", Uuid, nullable=False, index=True),
    Column("recipient", String(320), nullable=False),
    Column("status", string_enum(EmailStatus), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("last_error", String(1000), nullable=True),
)


def map_domain() -> None:
    tables.map((Email, emails))
