"""In-memory stand-ins for the auth-listener's unit of work, counting every write."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from auth_listener.domain.model import Identifier, KnownAccount, PendingLogin
from auth_listener.service_layer.unit_of_work import (
    AccountRepository,
    AuthListenerUnitOfWork,
    PendingLoginRepository,
)
from tests.support.fakes import FakeMessagingUnitOfWork


class FakeAccountRepository(AccountRepository):
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, KnownAccount] = {}
        self.locks_taken = 0

    def add(self, account: KnownAccount) -> None:
        self.rows[account.id] = account

    async def get(self, user_id: uuid.UUID, *, for_update: bool = False) -> KnownAccount | None:
        return self.rows.get(user_id)

    async def find(self, identifiers: Sequence[Identifier]) -> KnownAccount | None:
        for _kind, value in identifiers:
            for account in self.rows.values():
                if value in (str(account.id), account.email_key, account.username_key):
                    return account
        return None

    async def serialize_on(self, identifiers: Sequence[Identifier]) -> None:
        self.locks_taken += 1


class FakePendingLoginRepository(PendingLoginRepository):
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], PendingLogin] = {}

    async def remember(self, logins: Sequence[PendingLogin]) -> None:
        for login in logins:
            self.rows.setdefault((login.kind, login.value), login)

    async def take(self, identifiers: Sequence[Identifier]) -> list[PendingLogin]:
        return [
            login
            for kind, value in identifiers
            if (login := self.rows.pop((kind, value), None)) is not None
        ]

    async def forget_received_before(self, moment: datetime) -> int:
        stale = [key for key, login in self.rows.items() if login.received_at < moment]
        for key in stale:
            del self.rows[key]
        return len(stale)


class FakeAuthListenerUnitOfWork(FakeMessagingUnitOfWork, AuthListenerUnitOfWork):
    accounts: FakeAccountRepository  # the fakes, so that tests can read what they counted
    pending_logins: FakePendingLoginRepository

    def __init__(self) -> None:
        super().__init__()
        self.accounts = FakeAccountRepository()
        self.pending_logins = FakePendingLoginRepository()
