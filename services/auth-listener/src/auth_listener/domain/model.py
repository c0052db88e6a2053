"""The auth-listener's view of accounts: just enough to tell a first login from the others.

A login names its account by id, email or username. When the account is not known yet (its
UserCreated has not arrived: the broker does not keep order across queues), the login is
remembered by each identifier and applied once the account arrives.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AccountStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    DEACTIVATED = "deactivated"


class IdentifierKind(StrEnum):
    ID = "id"
    EMAIL = "email"
    USERNAME = "username"


Identifier = tuple[IdentifierKind, str]


def identifier_key(identifier: Identifier) -> str:
    kind, value = identifier
    return f"{kind.value}:{value}"


def normalised(value: str | None) -> str | None:
    """Emails and usernames are compared case-insensitively, as the users service does."""
    value = (value or "").strip().lower()
    return value or None


@dataclass(frozen=True)
class Login:
    """One login, from our own UserLoggedIn, another system's, or a Keycloak event."""

    logged_in_at: datetime
    user_id: uuid.UUID | None = None
    email: str | None = None
    username: str | None = None
    source: str = "onboarding"

    @property
    def identifiers(self) -> list[Identifier]:
        """Most specific first: an id beats an email, an email beats a username."""
        found: list[Identifier] = []
        if self.user_id is not None:
            found.append((IdentifierKind.ID, str(self.user_id)))
        if email := normalised(self.email):
            found.append((IdentifierKind.EMAIL, email))
        if username := normalised(self.username):
            found.append((IdentifierKind.USERNAME, username))
        return found


@dataclass(frozen=True, slots=True)
class AccountState:
    """Just what the busy path of a login needs: which account, and whether it is pending."""

    id: uuid.UUID
    status: AccountStatus


@dataclass(frozen=True)
class AccountSnapshot:
    """What UserCreated and UserUpdated say about an account, as of a moment."""

    user_id: uuid.UUID
    email: str
    username: str
    status: AccountStatus
    created_at: datetime
    as_of: datetime


@dataclass(eq=False)
class KnownAccount:
    id: uuid.UUID
    email_key: str
    username_key: str
    status: AccountStatus
    created_at: datetime
    as_of: datetime  # the snapshot this copy reflects; older snapshots are ignored
    first_login_at: datetime | None = None

    @classmethod
    def from_snapshot(cls, snapshot: AccountSnapshot) -> KnownAccount:
        return cls(
            id=snapshot.user_id,
            email_key=normalised(snapshot.email) or "",
            username_key=normalised(snapshot.username) or "",
            status=snapshot.status,
            created_at=snapshot.created_at,
            as_of=snapshot.as_of,
        )

    @property
    def identifiers(self) -> list[Identifier]:
        return [
            (IdentifierKind.ID, str(self.id)),
            (IdentifierKind.EMAIL, self.email_key),
            (IdentifierKind.USERNAME, self.username_key),
        ]

    def replace_with(self, snapshot: AccountSnapshot) -> bool:
        """Take a newer snapshot; False (and no change) for an older one."""
        if snapshot.as_of < self.as_of:
            return False
        self.email_key = normalised(snapshot.email) or ""
        self.username_key = normalised(snapshot.username) or ""
        self.as_of = snapshot.as_of
        # A login we have seen counts even if this snapshot was taken before it was applied.
        seen_login = self.first_login_at is not None
        pending = snapshot.status is AccountStatus.PENDING
        self.status = AccountStatus.ACTIVE if pending and seen_login else snapshot.status
        return True

    def log_in(self, at: datetime) -> datetime | None:
        """The activation time when this is the first login of a pending account, else None."""
        if self.status is not AccountStatus.PENDING:
            return None
        self.status = AccountStatus.ACTIVE
        self.first_login_at = at
        return at


@dataclass(eq=False)
class PendingLogin:
    """A login of an account not known yet, kept by one of its identifiers."""

    kind: IdentifierKind
    value: str
    logged_in_at: datetime
    received_at: datetime
