from __future__ import annotations

from auth_listener.adapters.repository import (
    SqlAlchemyAccountRepository,
    SqlAlchemyPendingLoginRepository,
)
from auth_listener.service_layer.unit_of_work import AuthListenerUnitOfWork
from onboarding_shared.orm import RepositoriesUnitOfWork, SessionBound


class SqlAlchemyAuthListenerUnitOfWork(RepositoriesUnitOfWork, AuthListenerUnitOfWork):
    accounts = SessionBound(SqlAlchemyAccountRepository)
    pending_logins = SessionBound(SqlAlchemyPendingLoginRepository)
