"""Tables of the invitations database, and the mapping of the domain classes onto them."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Enum, Index, Integer, String, Table, Text, Uuid
from sqlalchemy.orm import registry

from invitations.domain.model import (
    DailyQuota,
    Invitation,
    InvitationStatus,
    InviterSettings,
    Member,
)
from onboarding_shared.db import UtcDateTime, map_once, new_metadata
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
    Column("email_key", String(320), nullable=False),
    Column("token_salt", String(64), nullable=False),
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
    Column("ttl_hours", Integer, nullable=False),
    Column("inviter_id", Uuid, nullable=True),
    Column("inviter_name", String(200), nullable=True),
    Column("message", Text, nullable=True),
    Column("sent_at", UtcDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", String(1000), nullable=True),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("deferred_at", UtcDateTime, nullable=True),
    Column("sends", Integer, nullable=False, default=1),
    Column("accepted_at", UtcDateTime, nullable=True),
    Column("accepted_user_id", Uuid, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("roles", JSON, nullable=False),
    Column("notify_inviter", Boolean, nullable=False),
    Column("remind_at", UtcDateTime, nullable=True),
    Column("reminded_at", UtcDateTime, nullable=True),
    Index("ix_invitations_created", "created_at"),
    Index("ix_invitations_email_key_status", "email_key", "status"),
    Index("ix_invitations_status_expires", "status", "expires_at"),
    Index("ix_invitations_remind_at", "remind_at"),
)

members = Table(
    "members",
    metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("email_key", String(320), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("email", String(320), nullable=True),
)

inviter_settings = Table(
    "inviter_settings",
    metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("notify_on_acceptance", Boolean, nullable=False),
)

daily_quotas = Table(
    "daily_quotas",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("used", Integer, nullable=False),
)

messaging = MessagingTables(
    outbox=define_outbox_table(metadata), inbox=define_inbox_table(metadata)
)


def map_domain() -> None:
    map_once(
        mapper_registry,
        (Invitation, invitations),
        (Member, members),
        (DailyQuota, daily_quotas),
        (InviterSettings, inviter_settings),
    )
