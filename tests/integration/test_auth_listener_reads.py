"""The auth-listener's busy path on SQLite (a file, as `make run` uses) and on PostgreSQL: its
reads wait for no writer and can write nothing, reads asked together each get their own
answer, and logins racing their accounts and each other, through the reader and the memory as
the service wires them, still activate every account exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from auth_listener.adapters import orm
from auth_listener.adapters.reading import reading_engine
from auth_listener.adapters.repository import SqlAlchemyAccountReader
from auth_listener.adapters.unit_of_work import SqlAlchemyAuthListenerUnitOfWork
from auth_listener.bootstrap import MIGRATIONS
from auth_listener.domain.model import (
    AccountState,
    AccountStatus,
    Identifier,
    IdentifierKind,
    Login,
)
from auth_listener.service_layer import services
from auth_listener.service_layer.logged_in import LoggedInAccounts
from auth_listener.service_layer.services import LoginOutcome
from onboarding_shared.contract import UserCreated, new_event
from onboarding_shared.db import create_engine, session_factory
from onboarding_shared.schema import migrate
from tests.support.databases import DatabaseFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROUNDS = 30


@dataclass
class Listener:
    engine: AsyncEngine
    readers: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    reader: SqlAlchemyAccountReader
    logged_in: LoggedInAccounts

    def uow(self) -> SqlAlchemyAuthListenerUnitOfWork:
        return SqlAlchemyAuthListenerUnitOfWork(
            self.sessions, orm.messaging, producer="auth-listener"
        )

    def login(self, **identity: Any) -> Callable[[], Awaitable[LoginOutcome]]:
        now = datetime.now(UTC)
        return lambda: services.record_login(
            self.uow(),
            Login(logged_in_at=now, **identity),
            event_id=uuid.uuid4(),
            now=now,
            reader=self.reader,
            logged_in=self.logged_in,
        )

    def account(self, event: Any) -> Callable[[], Awaitable[None]]:
        return lambda: services.apply_account(self.uow(), event, logged_in=self.logged_in)


@pytest.fixture(params=["sqlite", "postgresql"])
async def listener(
    request: pytest.FixtureRequest, tmp_path: Path, databases: DatabaseFactory
) -> AsyncIterator[Listener]:
    """As bootstrap wires it: the service's engine, and the reader's engine beside it."""
    orm.map_domain()
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'auth_listener.db'}"
        await asyncio.to_thread(migrate, url, MIGRATIONS)
    else:
        url = await databases.create_migrated("auth_listener", MIGRATIONS)
    engine = create_engine(url)
    readers = reading_engine(engine)
    yield Listener(
        engine,
        readers,
        session_factory(engine),
        SqlAlchemyAccountReader(readers),
        LoggedInAccounts(1000),
    )
    await readers.dispose()
    await engine.dispose()


def created(user_id: uuid.UUID, email: str, username: str, status: str = "pending") -> Any:
    return new_event(
        UserCreated(
            user_id=user_id,
            email=email,
            username=username,
            name="Racer",
            roles=["user"],
            status=status,
            created_at=datetime.now(UTC),
        ),
        producer="users",
    )


async def test_logins_racing_their_account_and_each_other_activate_it_exactly_once(
    listener: Listener,
) -> None:
    user_ids = []
    for round_ in range(ROUNDS):
        user_id = uuid.uuid4()
        user_ids.append(user_id)
        email, username = f"racer-{round_}@example.com", f"racer{round_}"
        account = listener.account(created(user_id, email, username))
        by_email = listener.login(email=email)
        by_id = listener.login(user_id=user_id)
        by_username = listener.login(username=username)
        steps = [account, by_email, by_id, by_username]
        if round_ % 2:  # the account first: the logins race each other to activate it
            await account()
            steps = steps[1:]
        steps = steps[round_ % len(steps) :] + steps[: round_ % len(steps)]
        for result in await asyncio.gather(*(step() for step in steps), return_exceptions=True):
            if isinstance(result, BaseException):
                raise result
        # One more login, now that it is settled: answered by the busy path.
        assert await listener.login(email=email)() is LoginOutcome.ALREADY_ACTIVE

    accounts, logins, outbox = orm.known_accounts, orm.pending_logins, orm.messaging.outbox
    async with listener.sessions() as session:
        rows = await session.execute(select(accounts.c.id, accounts.c.status))
        statuses = {row.id: row.status for row in rows}
        pending = (await session.execute(select(func.count()).select_from(logins))).scalar()
        activated = (
            await session.execute(
                select(func.count()).where(outbox.c.event_type == "UserActivated")
            )
        ).scalar()
    assert [statuses.get(user_id) for user_id in user_ids] == [AccountStatus.ACTIVE] * ROUNDS
    assert pending == 0
    assert activated == ROUNDS  # once each


async def test_reads_asked_together_each_get_their_own_account(listener: Listener) -> None:
    ada, grace, pending = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await listener.account(created(ada, "ada@example.com", "shared", status="active"))()
    await listener.account(created(grace, "grace@example.com", "grace", status="active"))()
    await listener.account(created(pending, "pending@example.com", "pending"))()
    asked = [
        ([("email", "ada@example.com")], AccountState(ada, AccountStatus.ACTIVE)),
        ([("username", "shared")], AccountState(ada, AccountStatus.ACTIVE)),
        # The most specific identifier wins, as in a unit of work:
        ([("id", str(grace)), ("username", "shared")], AccountState(grace, AccountStatus.ACTIVE)),
        (
            [("email", "grace@example.com"), ("username", "shared")],
            AccountState(grace, AccountStatus.ACTIVE),
        ),
        ([("email", "pending@example.com")], AccountState(pending, AccountStatus.PENDING)),
        ([("email", "nobody@example.com")], None),
        (
            [("id", str(uuid.uuid4())), ("username", "grace")],
            AccountState(grace, AccountStatus.ACTIVE),
        ),
    ] * 20
    answers = await asyncio.gather(
        *(listener.reader.state_of(_identifiers(ids)) for ids, _ in asked)
    )
    assert answers == [expected for _, expected in asked]


def _identifiers(pairs: list[tuple[str, str]]) -> list[Identifier]:
    return [(IdentifierKind(kind), value) for kind, value in pairs]


async def test_a_failed_read_fails_every_login_that_asked_for_it(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'no.db'}")
    readers = reading_engine(engine)
    try:
        reader = SqlAlchemyAccountReader(readers)
        results = await asyncio.gather(
            *(reader.state_of(_identifiers([("email", f"{n}@example.com")])) for n in range(5)),
            return_exceptions=True,
        )
        assert all(isinstance(result, DBAPIError) for result in results), results
    finally:
        await readers.dispose()
        await engine.dispose()


async def test_the_busy_path_waits_for_no_writer(listener: Listener) -> None:
    """A unit of work holding the write lock (SQLite) or the account's row and identifier
    locks (PostgreSQL) does not hold up a login of an active account."""
    ada = uuid.uuid4()
    await listener.account(created(ada, "ada@example.com", "ada", status="active"))()
    listener.logged_in.forget(ada)  # make it read
    uow = listener.uow()
    async with uow:
        await uow.accounts.serialize_on(_identifiers([("email", "ada@example.com")]))
        assert await uow.accounts.find_for_update(_identifiers([("id", str(ada))])) is not None
        outcome = await asyncio.wait_for(listener.login(email="ada@example.com")(), timeout=10)
        assert outcome is LoginOutcome.ALREADY_ACTIVE


async def test_the_busy_path_reads_outside_any_transaction_and_cannot_write(
    listener: Listener,
) -> None:
    async with listener.readers.connect() as connection:
        await connection.execute(select(orm.known_accounts.c.id))
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        if listener.readers.dialect.name == "sqlite":
            assert not driver.in_transaction  # no BEGIN (IMMEDIATE or not): no write lock
            with pytest.raises(DBAPIError, match="readonly"):
                await connection.execute(text("DELETE FROM known_accounts"))
        else:
            assert not driver.is_in_transaction()
