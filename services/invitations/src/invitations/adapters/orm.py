"""Tables of the invitations database, and the mapping of the domain classes onto them."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Index, Integer, String, Table, Text, Uuid

from invitations.domain.imports import ImportedRow, ImportJob, ImportStatus
from invitations.domain.links import InviteLink
from invitations.domain.model import (
    DailyQuota,
    Invitation,
    InvitationStatus,
    InviterSettings,
    Member,
)
from onboarding_shared.db import UtcDateTime, string_enum
from onboarding_shared.orm import service_tables

tables = service_tables()
metadata, messaging = tables.metadata, tables.messaging

invitations = Table(
    "invitations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False),
    Column("token_salt", String(64), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("status", string_enum(InvitationStatus), nullable=False),
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

invitation_imports = Table(
    "invitation_imports",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("inviter_id", Uuid, nullable=True),
    Column("status", string_enum(ImportStatus), nullable=False),
    Column("total_rows", Integer, nullable=False),
    Column("processed_rows", Integer, nullable=False),
    Column("queued", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("quota_day", String(10), nullable=False),
    Column("ttl_hours", Integer, nullable=False),
    Column("message", Text, nullable=True),
    Column("notify_inviter", Boolean, nullable=False),
    Column("filename", String(255), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Index("ix_invitation_imports_status_created", "status", "created_at"),
)

invitation_import_rows = Table(
    "invitation_import_rows",
    metadata,
    Column("import_id", Uuid, primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("given", String(1000), nullable=False),
    Column("name", String(1000), nullable=True),
    Column("roles", JSON, nullable=False),
    Column("outcome", String(30), nullable=True),
    Column("email", String(320), nullable=True),
    Column("invitation_id", Uuid, nullable=True),
    Column("reason", String(1000), nullable=True),
)

invite_links = Table(
    "invite_links",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("token_salt", String(64), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("max_uses", Integer, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("allowed_domain", String(253), nullable=True),
    Column("roles", JSON, nullable=False),
    Column("created_by", Uuid, nullable=True),
    Column("creator_name", String(200), nullable=True),
    Column("uses", Integer, nullable=False),
    Column("regenerated_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    Index("ix_invite_links_created", "created_at"),
)


def map_domain() -> None:
    tables.map(
        (Invitation, invitations),
        (Member, members),
        (DailyQuota, daily_quotas),
        (InviterSettings, inviter_settings),
        (ImportJob, invitation_imports),
        (ImportedRow, invitation_import_rows),
        (InviteLink, invite_links),
    )
