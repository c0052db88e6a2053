"""One email the mailer is responsible for, from the event that asked for it to its outcome."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class EmailStatus(StrEnum):
    QUEUED = "queued"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"


@dataclass(eq=False)
class Email:
    """Keyed by the event that asked for it: a redelivered event finds its email already sent."""

    id: uuid.UUID
    source_event_id: uuid.UUID
    kind: str
    reference_id: uuid.UUID
    recipient: str
    status: EmailStatus
    created_at: datetime
    attempts: int = 0
    sent_at: datetime | None = None
    last_error: str | None = None

    @property
    def settled(self) -> bool:
        return self.status in (EmailStatus.SENT, EmailStatus.FAILED)

    def begin_attempt(self) -> None:
        self.attempts += 1

    def mark_sent(self, at: datetime) -> None:
        self.status = EmailStatus.SENT
        self.sent_at = at
        self.last_error = None

    def defer(self, reason: str) -> bool:
        """The server could not take it now; True when that is news worth announcing (the
        first deferral, another reason, or the 2nd, 4th, 8th... attempt, so announcements thin
        out as an outage goes on)."""
        news = (
            self.status is not EmailStatus.RETRYING
            or self.last_error != reason
            or self.attempts & (self.attempts - 1) == 0
        )
        self.status = EmailStatus.RETRYING
        self.last_error = reason
        return news

    def deliver_by(self, retry_for: timedelta, link_expires_at: datetime | None) -> datetime:
        """When retrying stops: its own limit, or sooner when the link it carries expires."""
        limit = self.created_at + retry_for
        return min(limit, link_expires_at) if link_expires_at else limit

    def mark_failed(self, reason: str) -> None:
        self.status = EmailStatus.FAILED
        self.last_error = reason


SERVICE_NOT_AVAILABLE = 421


class SendError(Exception):
    """The SMTP server did not take the email."""

    permanent: bool = False


class TransientSendError(SendError):
    """Worth retrying: connection refused, timeout, 4xx."""

    def __init__(self, reason: str, *, server_answered: bool = True, code: int | None = None):
        super().__init__(reason)
        self.server_answered = server_answered
        self.code = code

    @property
    def server_unavailable(self) -> bool:
        """The server takes no mail at all right now (unreachable, or 421 "service not
        available"), rather than deferring this one message (450 mailbox busy, greylisting)."""
        return not self.server_answered or self.code == SERVICE_NOT_AVAILABLE


class PermanentSendError(SendError):
    """Retrying cannot help: 5xx, recipient refused."""

    permanent = True
