"""What the use cases need from the outside world, besides the database."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol


@dataclass(frozen=True)
class AttemptOutcome:
    reached_server: bool
    at: datetime


class MailSender(Protocol):
    @property
    def last_attempt(self) -> AttemptOutcome | None:
        """Whether the last attempt reached the SMTP server; None before the first one."""

    @property
    def reachability_changed(self) -> asyncio.Event:
        """Set when an attempt reaches the server after one that did not, or the reverse."""

    async def send(self, message: EmailMessage) -> None:
        """Hand the message to the SMTP server; raise TransientSendError or PermanentSendError."""
