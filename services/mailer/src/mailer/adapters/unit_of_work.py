from __future__ import annotations

from typing import Self

from mailer.adapters.repository import SqlAlchemyEmailRepository
from mailer.service_layer.unit_of_work import MailerUnitOfWork
from onboarding_shared.unit_of_work import SqlAlchemyUnitOfWork


class SqlAlchemyMailerUnitOfWork(SqlAlchemyUnitOfWork, MailerUnitOfWork):
    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.emails = SqlAlchemyEmailRepository(self.session)
        return self
