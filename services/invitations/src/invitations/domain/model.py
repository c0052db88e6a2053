"""Invitations and their lifecycle. Plain Python: the ORM maps these classes from outside."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

TOKEN_BYTES = 32  # 256 random bits


class InvitationStatus(StrEnum):
    PENDING = "pending"  # not yet emailed
    SENT = "sent"
    FAILED = "failed"
    ACCEPTED = "accepted"
    EXPIRED = "expired"
    REVOKED = "revoked"


FINAL_STATUSES = frozenset({InvitationStatus.ACCEPTED, InvitationStatus.REVOKED})


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """Only this hash is stored: a leaked database does not leak working links."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(eq=False)
class Invitation:
    id: uuid.UUID
    email: str
    token_hash: str
    status: InvitationStatus
    created_at: datetime
    expires_at: datetime
    sent_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None

    @classmethod
    def issue(cls, email: str, *, now: datetime, ttl: timedelta) -> tuple[Invitation, str]:
        """A new invitation and its token; the token is shown once, in the email."""
        token = new_token()
        invitation = cls(
            id=uuid.uuid4(),
            email=email,
            token_hash=hash_token(token),
            status=InvitationStatus.PENDING,
            created_at=now,
            expires_at=now + ttl,
        )
        return invitation, token

    def status_at(self, now: datetime) -> InvitationStatus:
        if self.status not in FINAL_STATUSES and now >= self.expires_at:
            return InvitationStatus.EXPIRED
        return self.status

    def record_sent(self, *, at: datetime, attempts: int) -> None:
        if self.status in FINAL_STATUSES:
            return
        self.status = InvitationStatus.SENT
        self.sent_at = at
        self.attempts = max(self.attempts, attempts)
        self.last_error = None

    def record_failed(self, *, reason: str, attempts: int) -> None:
        if self.status in FINAL_STATUSES or self.status is InvitationStatus.SENT:
            return  # a later success, or a final state, wins over a stale failure
        self.status = InvitationStatus.FAILED
        self.attempts = max(self.attempts, attempts)
        self.last_error = reason
