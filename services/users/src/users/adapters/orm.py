"""Tables of the users database, and the mapping of the domain classes onto them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    TypeDecorator,
    Uuid,
)

from onboarding_shared.db import UtcDateTime, string_enum
from onboarding_shared.orm import service_tables
from users.domain.audit import AuditAction, AuditEntry, TargetKind
from users.domain.invitations import GrantState, InvitationGrant
from users.domain.invite_links import InviteLinkGrant, LinkGrantState
from users.domain.model import User, UserStatus
from users.domain.throttling import LoginThrottle


class JsonTuple(TypeDecorator[tuple[Any, ...]]):
    """A JSON array that reads back as a tuple, so what the domain holds as a tuple compares
    equal to what it wrote."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: tuple[Any, ...] | None, dialect: Dialect) -> Any:
        return None if value is None else list(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[Any, ...] | None:
        return None if value is None else tuple(value)


tables = service_tables()
metadata, messaging = tables.metadata, tables.messaging

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False, unique=True),
    Column("username", String(64), nullable=False),
    Column("username_key", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("roles", JSON, nullable=False),
    Column("is_admin", Boolean, nullable=False),
    Column("status", string_enum(UserStatus), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("require_password_change", Boolean, nullable=False),
    Column("nickname", String(120), nullable=True),
    Column("bio", String(260), nullable=True),
    Column("status_text", String(120), nullable=True),
    Column("first_login_at", UtcDateTime, nullable=True),
    Column("deactivated_at", UtcDateTime, nullable=True),
    Column("password_link_hash", String(64), nullable=True, unique=True),
    Column("password_link_expires_at", UtcDateTime, nullable=True),
    Column("avatar_etag", String(64), nullable=True),
    Index("ix_users_created", "created_at", "id"),
    Index("ix_users_status_created", "status", "created_at"),
    Index("ix_users_is_admin", "is_admin"),
)

login_throttles = Table(
    "login_throttles",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_started_at", UtcDateTime, nullable=False),
    Column("blocked_until", UtcDateTime, nullable=True),
)

avatars = Table(
    "avatars",
    metadata,
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("content", LargeBinary, nullable=False),
    Column("media_type", String(50), nullable=False),
    Column("etag", String(64), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# What the users service knows of invitations (from InvitationIssued / InvitationRevoked).
invitation_grants = Table(
    "invitation_grants",
    metadata,
    Column("invitation_id", Uuid, primary_key=True),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("state", string_enum(GrantState), nullable=False),
    Column("email", String(320), nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("roles", JsonTuple, nullable=False),
)

# What the users service knows of reusable invite links (from InviteLinkIssued / Revoked).
invite_link_grants = Table(
    "invite_link_grants",
    metadata,
    Column("link_id", Uuid, primary_key=True),
    Column("state", string_enum(LinkGrantState), nullable=False),
    # Unknown (NULL) while only a revocation has arrived.
    Column("token_hash", String(128), nullable=True, unique=True),
    Column("issued_at", UtcDateTime, nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("max_uses", Integer, nullable=False),
    Column("uses", Integer, nullable=False),
    Column("allowed_domain", String(253), nullable=True),
    Column("roles", JsonTuple, nullable=False),
)

# The audit trail (domain/audit.py), one row per event.
audit_entries = Table(
    "audit_entries",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("action", string_enum(AuditAction, length=40), nullable=False),
    Column("target_kind", string_enum(TargetKind), nullable=False),
    Column("target_id", Uuid, nullable=False),
    Column("target_label", String(320), nullable=True),
    Column("actor_id", Uuid, nullable=True),
    Column("actor_name", String(200), nullable=True),
    Column("details", JSON, nullable=False),
    Index("ix_audit_entries_occurred", "occurred_at"),
    Index("ix_audit_entries_target", "target_kind", "target_id"),
    Index("ix_audit_entries_actor", "actor_id"),
)


def map_domain() -> None:
    tables.map(
        (User, users),
        (LoginThrottle, login_throttles),
        (InvitationGrant, invitation_grants),
        (InviteLinkGrant, invite_link_grants),
        (AuditEntry, audit_entries),
    )
