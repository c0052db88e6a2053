"""Tables of the auth-listener database, and the mapping of the domain classes onto them."""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table, Uuid

from auth_listener.domain.model import AccountStatus, IdentifierKind, KnownAccount, PendingLogin
from onboarding_shared.db import UtcDateTime, string_enum
from onboarding_shared.orm import service_tables

tables = service_tables()
metadata, messaging = tables.metadata, tables.messaging


known_accounts = Table(
    "known_accounts",
    metadata,
    Column("id", Uuid, primary_key=True),
    # Not unique: a copy may briefly lag behind a change of email or username.
    Column("email_key", String(320), nullable=False, index=True),
    Column("username_key", String(100), nullable=False, index=True),
    Column("status", string_enum(AccountStatus), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("as_of", UtcDateTime, nullable=False),
    Column("first_login_at", UtcDateTime, nullable=True),
)

pending_logins = Table(
    "pending_logins",
    metadata,
    Column("kind", string_enum(IdentifierKind), primary_key=True),
    Column("value", String(320), primary_key=True),
    Column("logged_in_at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Index("ix_pending_logins_received", "received_at"),
)


def map_domain() -> None:
    tables.map((KnownAccount, known_accounts), (PendingLogin, pending_logins))
