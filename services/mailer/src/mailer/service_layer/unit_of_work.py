from __future__ import annotations

import abc
import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol

from mailer.domain.model import Email
from onboarding_shared.unit_of_work import AbstractUnitOfWork


class EmailRepository(abc.ABC):
    @abc.abstractmethod
    async def add_if_absent(self, email: Email) -> None:
        """Insert unless an email for the same source event exists. A concurrent insert of the
        same event waits for the first transaction to end, then does nothing."""

    @abc.abstractmethod
    async def lock_for_event(self, source_event_id: uuid.UUID) -> Email | None:
        """The email for this event, locked until the unit of work ends."""


class MailerUnitOfWork(AbstractUnitOfWork):
    emails: EmailRepository


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
