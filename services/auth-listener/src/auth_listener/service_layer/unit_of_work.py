from __future__ import annotations

import abc
import uuid
from collections.abc import Sequence
from datetime import datetime

from auth_listener.domain.model import Identifier, KnownAccount, PendingLogin
from onboarding_shared.unit_of_work import AbstractUnitOfWork


class AccountRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, account: KnownAccount) -> None: ...

    @abc.abstractmethod
    async def get(self, user_id: uuid.UUID, *, for_update: bool = False) -> KnownAccount | None: ...

    @abc.abstractmethod
    async def find(self, identifiers: Sequence[Identifier]) -> KnownAccount | None:
        """The account the most specific identifier names (they come most specific first)."""

    async def find_for_update(self, identifiers: Sequence[Identifier]) -> KnownAccount | None:
        """As find, with the account's row locked until the unit of work ends (after
        serialize_on). Databases override it with one statement."""
        account = await self.find(identifiers)
        return None if account is None else await self.get(account.id, for_update=True)

    @abc.abstractmethod
    async def serialize_on(self, identifiers: Sequence[Identifier]) -> None:
        """Hold, until the unit of work ends, a lock per identifier: a login and the arrival
        of its account then never miss each other."""


class PendingLoginRepository(abc.ABC):
    @abc.abstractmethod
    async def remember(self, logins: Sequence[PendingLogin]) -> None:
        """Keep each unless one is already kept for the same identifier (no write then)."""

    @abc.abstractmethod
    async def take(self, identifiers: Sequence[Identifier]) -> list[PendingLogin]:
        """Remove and return the logins kept for these identifiers."""

    @abc.abstractmethod
    async def forget_received_before(self, moment: datetime) -> int: ...


class AuthListenerUnitOfWork(AbstractUnitOfWork):
    accounts: AccountRepository
    pending_logins: PendingLoginRepository
