"""Tables of the invitations database, and the mapping of the domain classes onto them."""

from __future__ import annotations

from sqlalchemy import Column, Enum, Index, Integer, String, Table, Uuid
from sqlalchemy.orm import registry

from invitations.domain.model import Invitation, InvitationStatus
from onboarding_shared.db import UtcDateTime, new_metadata
from onboarding_shared.messaging.inbox import define_inbox_table
from onboarding_shared.messaging.outbox import define_outbox_table
from onboarding_shared.unit_of_work import MessagingTables

metadata = new_metadata()
mapper_registry = registry(metadata=metadata)

invitations = Table(
    "invitations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column(
        "status",
        Enum(
            InvitationStatus,
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
        ),
        nullable=False,
    ),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", String(1000), nullable=True),
    Index("ix_invitations_status_created", "status", "created_at"),
    Index("ix_invitations_email", "email"),
)

messaging = MessagingTables(
    outbox=define_outbox_table(metadata), inbox=define_inbox_table(metadata)
)

_mapped = False


def map_domain() -> None:
    global _mapped
    if not _mapped:
        mapper_registry.map_imperatively(Invitation, invitations)
        _mapped = True
