from __future__ import annotations

import abc
import uuid
from contextlib import AbstractAsyncContextManager

from mailer.domain.model import Email
from onboarding_shared.unit_of_work import AbstractUnitOfWork


class EmailRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, email: Email) -> None:
        """A new email, inserted at commit (an insert of an event's second email fails)."""

    @abc.abstractmethod
    async def for_event(self, source_event_id: uuid.UUID) -> Email | None:
        """The email for this event, if any."""


class MailerUnitOfWork(AbstractUnitOfWork):
    emails: EmailRepository

    @abc.abstractmethod
    def exclusively(self, source_event_id: uuid.UUID) -> AbstractAsyncContextManager[None]:
        """Every other delivery of this event, in this process or another replica, waits until
        the block ends. Its transactions are this unit's; none is open across the block, so
        the mail goes out while no database lock is held."""
