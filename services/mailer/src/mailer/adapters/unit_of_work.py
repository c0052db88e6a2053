from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Self

from mailer.adapters.locks import KeyedLocks
from mailer.adapters.repository import SqlAlchemyEmailRepository
from mailer.service_layer.unit_of_work import MailerUnitOfWork
from onboarding_shared.unit_of_work import SqlAlchemyUnitOfWork


class SqlAlchemyMailerUnitOfWork(SqlAlchemyUnitOfWork, MailerUnitOfWork):
    def __init__(self, *args: Any, email_locks: KeyedLocks, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Required, never made here: units of work with locks of their own would not exclude
        # each other. Bootstrap makes one for the process.
        self._email_locks = email_locks
        self._held = AsyncExitStack()

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self._held = AsyncExitStack()
        self.emails = SqlAlchemyEmailRepository(self.session, self._email_locks, self._held)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await super().__aexit__(exc_type, exc, traceback)
        finally:
            await self._held.aclose()
