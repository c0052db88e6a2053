from __future__ import annotations

from typing import Self

from auth_listener.adapters.repository import (
    SqlAlchemyAccountRepository,
    SqlAlchemyPendingLoginRepository,
)
from auth_listener.service_layer.unit_of_work import AuthListenerUnitOfWork
from onboarding_shared.unit_of_work import SqlAlchemyUnitOfWork


class SqlAlchemyAuthListenerUnitOfWork(SqlAlchemyUnitOfWork, AuthListenerUnitOfWork):
    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.accounts = SqlAlchemyAccountRepository(self.session)
        self.pending_logins = SqlAlchemyPendingLoginRepository(self.session)
        return self
