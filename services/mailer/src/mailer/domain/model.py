"""One email the mailer is responsible for, from the event that asked for it to its outcome."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
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

    def mark_retrying(self, reason: str) -> None:
        self.status = EmailStatus.RETRYING
        self.last_error = reason

    def mark_failed(self, reason: str) -> None:
        self.status = EmailStatus.FAILED
        self.last_error = reason


class SendError(Exception):
    """The SMTP server did not take the email."""

    permanent: bool = False


class TransientSendError(SendError):
    """Worth retrying: connection refused, timeout, 4xx."""

    def __init__(self, reason: str, *, server_answered: bool = True) -> None:
        super().__init__(reason)
        self.server_answered = server_answered


class PermanentSendError(SendError):
    """Retrying cannot help: 5xx, recipient refused."""

    permanent = True
