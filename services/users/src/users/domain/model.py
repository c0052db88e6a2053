"""Accounts and their lifecycle. Plain Python: the ORM maps these classes from outside.

Status: pending (never logged in), active (logged in at least once), deactivated (may not log
in). Reactivating puts an account back to active if it ever logged in, pending otherwise.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from users.domain import rules
from users.domain.passwords import PasswordPolicy, hash_link_token, new_link_token
from users.domain.rules import ADMIN_ROLE, USER_ROLE, FieldChecks


class UserStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    DEACTIVATED = "deactivated"


class LastAdmin(Exception):
    """The change would leave the workspace without an admin who can log in."""


class NotAllowed(Exception):
    """The acting user may not make this change."""


@dataclass(frozen=True)
class NewUser:
    """What an admin asked for (the "New User" form), checked by :meth:`checked`."""

    email: str
    name: str
    username: str
    password: str | None = None
    set_random_password: bool = False
    require_password_change: bool = False
    roles: tuple[str, ...] = (USER_ROLE,)
    verified: bool = False
    send_welcome_email: bool = False
    nickname: str | None = None
    bio: str | None = None
    status_text: str | None = None

    def checked(self, policy: PasswordPolicy) -> NewUser:
        """Normalised values, or InvalidFields naming every field that breaks a rule."""
        checks = FieldChecks()
        email = checks.check("email", rules.email_address, self.email)
        username = checks.check("username", rules.username, self.username)
        checked = replace(
            self,
            email=email,
            username=username,
            name=checks.check("name", rules.display_name, self.name),
            roles=tuple(checks.check("roles", rules.roles, list(self.roles))),
            nickname=checks.check("nickname", rules.nickname, self.nickname),
            bio=checks.check("bio", rules.bio, self.bio),
            status_text=checks.check("status_text", rules.status_text, self.status_text),
            # A random password nobody knows must be replaced at first use.
            require_password_change=self.require_password_change or self.set_random_password,
        )
        self._check_password_choice(checks, policy, username=username, email=email)
        checks.raise_if_any()
        return checked

    def _check_password_choice(
        self, checks: FieldChecks, policy: PasswordPolicy, *, username: str, email: str
    ) -> None:
        if self.set_random_password and self.password is not None:
            checks.fail("password", "give a password or set_random_password, not both")
        elif self.set_random_password and not self.send_welcome_email:
            checks.fail(
                "send_welcome_email",
                "must be true with set_random_password: the welcome email carries the link "
                "where the user sets their password",
            )
        elif not self.set_random_password and self.password is None:
            checks.fail("password", "give a password or set set_random_password")
        elif self.password is not None:
            checks.check(
                "password",
                lambda value: policy.check(value, username=username, email=email),
                self.password,
            )


EDITABLE_FIELDS = frozenset(
    {
        "name",
        "username",
        "email",
        "roles",
        "nickname",
        "bio",
        "status_text",
        "verified",
        "require_password_change",
        "deactivated",
    }
)
_RULES: dict[str, Any] = {
    "name": rules.display_name,
    "username": rules.username,
    "email": rules.email_address,
    "roles": rules.roles,
    "nickname": rules.nickname,
    "bio": rules.bio,
    "status_text": rules.status_text,
}
_FLAGS = frozenset({"verified", "require_password_change", "deactivated"})


def checked_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Normalised edits, or InvalidFields naming every field that breaks a rule."""
    checks = FieldChecks()
    result: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in EDITABLE_FIELDS:
            checks.fail(name, "cannot be changed here")
        elif name in _FLAGS:
            if not isinstance(value, bool):
                checks.fail(name, "must be true or false")
            result[name] = value
        elif value is None and name in {"name", "username", "email", "roles"}:
            checks.fail(name, "must not be null")
        else:
            result[name] = checks.check(name, _RULES[name], value)
    checks.raise_if_any()
    return result


@dataclass(eq=False)
class User:
    id: uuid.UUID
    email: str
    email_key: str
    username: str
    username_key: str
    name: str
    password_hash: str
    roles: list[str]
    is_admin: bool  # kept equal to ADMIN_ROLE in roles, so the database can count admins
    status: UserStatus
    created_at: datetime
    updated_at: datetime
    verified: bool = False
    require_password_change: bool = False
    nickname: str | None = None
    bio: str | None = None
    status_text: str | None = None
    first_login_at: datetime | None = None
    deactivated_at: datetime | None = None
    password_link_hash: str | None = None
    password_link_expires_at: datetime | None = None
    avatar_etag: str | None = None

    @classmethod
    def register(cls, new: NewUser, *, password_hash: str, now: datetime) -> User:
        """A pending account from a checked :class:`NewUser`."""
        return cls(
            id=uuid.uuid4(),
            email=new.email,
            email_key=rules.email_key(new.email),
            username=new.username,
            username_key=rules.username_key(new.username),
            name=new.name,
            password_hash=password_hash,
            roles=list(new.roles),
            is_admin=ADMIN_ROLE in new.roles,
            status=UserStatus.PENDING,
            created_at=now,
            updated_at=now,
            verified=new.verified,
            require_password_change=new.require_password_change,
            nickname=new.nickname,
            bio=new.bio,
            status_text=new.status_text,
        )

    @property
    def can_log_in(self) -> bool:
        return self.status is not UserStatus.DEACTIVATED

    @property
    def counts_as_admin(self) -> bool:
        """An admin who can still log in; the workspace always keeps at least one."""
        return self.is_admin and self.can_log_in

    def apply(self, changes: Mapping[str, Any], *, now: datetime) -> set[str]:
        """Apply checked changes; the names of the fields that really changed."""
        changed: set[str] = set()
        for name, value in changes.items():
            if name == "deactivated":
                if value != (self.status is UserStatus.DEACTIVATED):
                    self._set_deactivated(value, now)
                    changed.add(name)
            elif getattr(self, name) != value:
                self._set(name, value)
                changed.add(name)
        if changed:
            self.updated_at = now
        return changed

    def _set(self, name: str, value: Any) -> None:
        if name == "roles":
            self.roles = list(value)
            self.is_admin = ADMIN_ROLE in value
        elif name == "email":
            self.email, self.email_key = value, rules.email_key(value)
        elif name == "username":
            self.username, self.username_key = value, rules.username_key(value)
        else:
            setattr(self, name, value)

    def _set_deactivated(self, deactivated: bool, now: datetime) -> None:
        if deactivated:
            self.status = UserStatus.DEACTIVATED
            self.deactivated_at = now
        else:
            self.status = UserStatus.ACTIVE if self.first_login_at else UserStatus.PENDING
            self.deactivated_at = None

    def record_first_login(self, at: datetime) -> bool:
        """Pending becomes active; a deactivated account stays so. True if anything changed."""
        changed = False
        if self.first_login_at is None or at < self.first_login_at:
            self.first_login_at = at
            changed = True
        if self.status is UserStatus.PENDING:
            self.status = UserStatus.ACTIVE
            changed = True
        return changed

    def issue_password_link(self, *, now: datetime, ttl: timedelta) -> str:
        """A new single-use token for setting the password; any earlier one stops working."""
        token = new_link_token()
        self.password_link_hash = hash_link_token(token)
        self.password_link_expires_at = now + ttl
        return token

    def password_link_usable(self, now: datetime) -> bool:
        return (
            self.password_link_hash is not None
            and self.password_link_expires_at is not None
            and now < self.password_link_expires_at
            and self.can_log_in
        )

    def set_password(self, password_hash: str, *, now: datetime) -> None:
        """The new password also spends any outstanding link."""
        self.password_hash = password_hash
        self.password_link_hash = None
        self.password_link_expires_at = None
        self.require_password_change = False
        self.updated_at = now
