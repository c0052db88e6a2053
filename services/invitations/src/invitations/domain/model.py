"""Invitations and their lifecycle. Plain Python: the ORM maps these classes from outside."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from onboarding_shared.contract import ROLES, Role, default_roles

SALT_BYTES = 32
ADMIN_ROLE = "admin"
DEFAULT_ROLES = tuple(default_roles())


def normalised_email(email: str) -> str:
    """An address as validated and stored: NFKC-normalised, so full-width letters are their
    ASCII twins."""
    return unicodedata.normalize("NFKC", email)


def email_key(email: str) -> str:
    """What addresses are compared by: normalised_email(), then lower-cased."""
    return normalised_email(email).strip().lower()


class InvitationStatus(StrEnum):
    PENDING = "pending"  # not yet emailed
    RETRYING = "retrying"  # the SMTP server could not take it yet; the mailer tries again
    SENT = "sent"
    FAILED = "failed"
    ACCEPTED = "accepted"
    EXPIRED = "expired"  # derived from expires_at; never stored
    REVOKED = "revoked"


OPEN_STATUSES = frozenset(
    {
        InvitationStatus.PENDING,
        InvitationStatus.RETRYING,
        InvitationStatus.SENT,
        InvitationStatus.FAILED,
    }
)
# While the email is still on its way: the only statuses a deferral may apply to.
UNDELIVERED_STATUSES = frozenset({InvitationStatus.PENDING, InvitationStatus.RETRYING})
FINAL_STATUSES = frozenset({InvitationStatus.ACCEPTED, InvitationStatus.REVOKED})


class InvitationError(Exception):
    """An action the invitation's state does not allow; the message says why."""


class InvalidRoles(ValueError):
    """Roles an invitation cannot carry: unknown, or none."""


class RoleNotAllowed(Exception):
    """The inviter may not hand out one of the roles asked for."""


def invitation_roles(requested: Iterable[str], *, inviter_is_admin: bool) -> list[Role]:
    """The roles an invitation carries: known ones, each once, in the contract's order. Only an
    admin may invite an admin: whoever uses the link gets them, so they are checked here."""
    given = {role.strip().lower() for role in requested}
    if unknown := sorted(given - set(ROLES)):
        raise InvalidRoles(f"unknown role(s) {', '.join(unknown)}; known roles: {', '.join(ROLES)}")
    if not given:
        raise InvalidRoles("at least one role is needed")
    if ADMIN_ROLE in given and not inviter_is_admin:
        raise RoleNotAllowed("only an admin may invite an admin")
    return [role for role in ROLES if role in given]


class TokenMinter:
    """Join tokens are HMAC(secret, random salt): 256 unpredictable bits, yet the same link can
    be emailed again. The database keeps the salt and the token's hash, never the token, so a
    copy of the database alone opens nothing."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret must be at least 32 bytes")
        self._secret = secret

    @staticmethod
    def new_salt() -> str:
        return secrets.token_hex(SALT_BYTES)

    def token(self, salt: str) -> str:
        digest = hmac.new(self._secret, bytes.fromhex(salt), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ReminderRule:
    """One reminder, ``before`` the expiry, for invitations valid at least ``min_validity``
    (Zulip's rule: 2 days before, when valid 4 days or more). No ``before``: no reminders."""

    before: timedelta | None = timedelta(days=2)
    min_validity: timedelta = timedelta(days=4)

    def time_for(self, issued_at: datetime, expires_at: datetime) -> datetime | None:
        if self.before is None or expires_at - issued_at < self.min_validity:
            return None
        return expires_at - self.before


@dataclass(frozen=True)
class Inviter:
    user_id: uuid.UUID
    name: str | None


@dataclass(eq=False)
class Invitation:
    id: uuid.UUID
    email: str
    email_key: str  # see email_key(): NFKC, lower-cased
    token_salt: str
    token_hash: str
    status: InvitationStatus
    created_at: datetime
    expires_at: datetime
    ttl_hours: int
    inviter_id: uuid.UUID | None = None
    inviter_name: str | None = None
    message: str | None = None
    sent_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None  # the latest delivery problem: a deferral's or a failure's
    next_attempt_at: datetime | None = None  # while retrying: when the mailer tries again
    # The newest deferral applied. Kept after it stops retrying: a late, older deferral that
    # arrives after a newer one must not bring back a stale reason.
    deferred_at: datetime | None = None
    sends: int = 1
    accepted_at: datetime | None = None
    accepted_user_id: uuid.UUID | None = None
    revoked_at: datetime | None = None
    # What the account created by joining gets (invitation_roles() checked them).
    roles: list[Role] = field(default_factory=default_roles)
    # Email the inviter when it is accepted (their own setting can turn all of those off).
    notify_inviter: bool = True
    # When its one reminder is due (None: none is, or it went out, or it was cancelled).
    remind_at: datetime | None = None
    reminded_at: datetime | None = None

    @classmethod
    def issue(
        cls,
        email: str,
        *,
        now: datetime,
        ttl_hours: int,
        minter: TokenMinter,
        inviter: Inviter | None = None,
        message: str | None = None,
        roles: Iterable[Role] = DEFAULT_ROLES,
        notify_inviter: bool = True,
        reminders: ReminderRule | None = None,
    ) -> Invitation:
        salt = minter.new_salt()
        expires_at = now + timedelta(hours=ttl_hours)
        return cls(
            id=uuid.uuid4(),
            email=email,
            email_key=email_key(email),
            token_salt=salt,
            token_hash=hash_token(minter.token(salt)),
            status=InvitationStatus.PENDING,
            created_at=now,
            expires_at=expires_at,
            ttl_hours=ttl_hours,
            inviter_id=inviter.user_id if inviter else None,
            inviter_name=inviter.name if inviter else None,
            message=message,
            roles=list(roles),
            notify_inviter=notify_inviter,
            remind_at=reminders.time_for(now, expires_at) if reminders else None,
        )

    def is_expired_at(self, now: datetime) -> bool:
        """The one rule for expired, which is never stored: an open invitation whose expiry has
        come. The repository's SQL (adapters.repository._expired) says the same; change them
        together."""
        return self.status in OPEN_STATUSES and now >= self.expires_at

    def status_at(self, now: datetime) -> InvitationStatus:
        return InvitationStatus.EXPIRED if self.is_expired_at(now) else self.status

    def is_open_at(self, now: datetime) -> bool:
        return self.status_at(now) in OPEN_STATUSES

    def resend(self, *, now: datetime, minter: TokenMinter) -> None:
        """Email it again: same link and expiry while unexpired; an expired one gets a new link
        and a new expiry, and its old link dies."""
        if self.status in FINAL_STATUSES:
            raise InvitationError(f"an invitation that was {self.status.value} cannot be resent")
        if self.status_at(now) is InvitationStatus.EXPIRED:
            self.token_salt = minter.new_salt()
            self.token_hash = hash_token(minter.token(self.token_salt))
            self.expires_at = now + timedelta(hours=self.ttl_hours)
        self.status = InvitationStatus.PENDING
        self.last_error = None
        self.next_attempt_at = None
        self.sends += 1
        self.remind_at = None  # the admin just nudged them: no automatic reminder on top

    def revoke(self, *, now: datetime) -> bool:
        """Kill the link. False when it was already revoked (nothing to do)."""
        if self.status is InvitationStatus.ACCEPTED:
            raise InvitationError("an accepted invitation cannot be revoked")
        if self.status is InvitationStatus.REVOKED:
            return False
        self.status = InvitationStatus.REVOKED
        self.revoked_at = now
        self.next_attempt_at = None  # whatever the mailer still does, nobody waits for it
        self.remind_at = None
        return True

    def accept(self, *, user_id: uuid.UUID, at: datetime) -> bool:
        """The account made with its link exists. False when it was accepted already."""
        if self.status is InvitationStatus.ACCEPTED:
            return False
        self.status = InvitationStatus.ACCEPTED
        self.accepted_at = at
        self.accepted_user_id = user_id
        self.last_error = None
        self.next_attempt_at = None
        self.remind_at = None
        return True

    def reminder_due(self, now: datetime) -> bool:
        """Its reminder should go now: due, the first email delivered, the link still alive."""
        return (
            self.remind_at is not None
            and self.remind_at <= now
            and self.status is InvitationStatus.SENT
            and not self.is_expired_at(now)
        )

    def remind(self, now: datetime) -> None:
        if not self.reminder_due(now):
            raise InvitationError("no reminder is due for this invitation")
        self.remind_at = None
        self.reminded_at = now

    def should_notify(self, inviter: InviterSettings | None) -> bool:
        """Whether its inviter hears of its acceptance: unless turned off for this invitation
        or in the inviter's own settings."""
        return (
            self.notify_inviter
            and self.inviter_id is not None
            and (inviter is None or inviter.notify_on_acceptance)
        )

    def record_sent(self, *, at: datetime, attempts: int) -> None:
        if self.status in FINAL_STATUSES:
            return
        self.status = InvitationStatus.SENT
        self.sent_at = at
        self.attempts = max(self.attempts, attempts)
        self.last_error = None
        self.next_attempt_at = None

    def record_failed(self, *, reason: str, attempts: int) -> None:
        if self.status in FINAL_STATUSES or self.status is InvitationStatus.SENT:
            return  # a later success, or a final state, wins over a stale failure
        self.status = InvitationStatus.FAILED
        self.attempts = max(self.attempts, attempts)
        self.last_error = reason
        self.next_attempt_at = None

    def record_deferred(
        self, *, reason: str, attempts: int, next_attempt_at: datetime, at: datetime
    ) -> None:
        """The mailer could not hand the email over yet and will try again. Only while the
        email is still on its way: a deferral never undoes a send, a failure or a final state,
        and one older than the newest deferral applied changes nothing (events may arrive out
        of order)."""
        if self.status not in UNDELIVERED_STATUSES:
            return
        if self.deferred_at is not None and at < self.deferred_at:
            return
        self.status = InvitationStatus.RETRYING
        self.attempts = max(self.attempts, attempts)
        self.last_error = reason
        self.next_attempt_at = next_attempt_at
        self.deferred_at = at


@dataclass(eq=False)
class Member:
    """What this service knows of an account, from UserCreated and UserUpdated."""

    user_id: uuid.UUID
    email_key: str
    name: str
    status: str
    updated_at: datetime
    # The address as written; None for members learnt before it was kept (email_key serves).
    email: str | None = None

    @classmethod
    def learn(
        cls, user_id: uuid.UUID, *, email: str, name: str, status: str, at: datetime
    ) -> Member:
        return cls(user_id, email_key(email), name, status, updated_at=at, email=email)

    def apply(self, *, email: str, name: str, status: str, at: datetime) -> None:
        if at < self.updated_at:
            return  # an older snapshot arriving late
        self.email, self.email_key = email, email_key(email)
        self.name, self.status, self.updated_at = name, status, at

    @property
    def address(self) -> str:
        return self.email or self.email_key

    @property
    def reachable(self) -> bool:
        return self.status != "deactivated"


@dataclass(eq=False)
class InviterSettings:
    """An inviter's own choices about their invitations."""

    user_id: uuid.UUID
    notify_on_acceptance: bool = True


@dataclass(eq=False)
class DailyQuota:
    """Invitations created on one UTC day, for the workspace-wide daily limit."""

    day: str  # YYYY-MM-DD
    used: int = 0

    def take(self, count: int, *, limit: int) -> bool:
        if self.used + count > limit:
            return False
        self.used += count
        return True
