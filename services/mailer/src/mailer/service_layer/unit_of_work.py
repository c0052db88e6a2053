from __future__ import annotations

import abc
import uuid

from mailer.domain.model import Email
from onboarding_shared.unit_of_work import AbstractUnitOfWork


class EmailRepository(abc.ABC):
    @abc.abstractmethod
    async def add_if_absent(self, email: Email) -> None:
        """Insert unless an email for the same source event exists. A concurrent insert of the
        same event waits for the first transaction to end, then does nothing."""

    @abc.abstractmethod
    async def lock_for_event(self, source_event_id: uuid.UUID) -> Email | None:
        """The email for this event, locked until the unit of work ends: other deliveries of
        the same event wait. Call it first: what the unit wrote before may already be
        committed when it returns (on SQLite the lock is not the database's, see adapters)."""


class MailerUnitOfWork(AbstractUnitOfWork):
    emails: EmailRepository
