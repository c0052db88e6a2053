"""Use cases in hand at the same moment share one transaction (GroupedUnitsOfWork), on SQLite
and on PostgreSQL: fewer commits, and not one guarantee less. Each use case still claims its
event with its effect; a group with one bad use case is rolled back and every use case runs
again alone, so the good ones land and the bad one fails as it would have on its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from onboarding_shared.contract import Envelope, UserActivated, new_event
from onboarding_shared.db import create_engine, session_factory
from onboarding_shared.messaging.queues import USERS_ACTIVATIONS
from onboarding_shared.orm import service_tables
from onboarding_shared.unit_of_work import (
    GroupedUnitsOfWork,
    SqlAlchemyUnitOfWork,
    once_per_event,
)
from tests.support.databases import DatabaseFactory

pytestmark = pytest.mark.integration

TABLES = service_tables()


class Refused(Exception):
    """The use case's own error, which its caller must see."""


@once_per_event(USERS_ACTIVATIONS)
async def announce(uow: SqlAlchemyUnitOfWork, event: Envelope[UserActivated]) -> uuid.UUID:
    """Writes one outbox row per event, or refuses after writing it."""
    uow.emit(event.data)
    if event.data.user_id.int == 0:
        raise Refused("this one")
    return event.data.user_id


def announcing(
    event: Envelope[UserActivated],
) -> Callable[[SqlAlchemyUnitOfWork], Awaitable[uuid.UUID | None]]:
    return lambda uow: announce(uow, event)


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = session_factory(engine)
        self.commits = 0
        event.listen(engine.sync_engine, "commit", self._committed)

    def _committed(self, _connection: Any) -> None:
        self.commits += 1

    def uow(self) -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(self.sessions, TABLES.messaging, producer="tests")

    async def count(self, table: str) -> int:
        chosen = TABLES.metadata.tables[table]
        async with self.sessions() as session:
            return await session.scalar(select(func.count()).select_from(chosen)) or 0


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, databases: DatabaseFactory
) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'grouped.db'}"
    else:
        url = await databases.create("grouped")
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(TABLES.metadata.create_all)
    try:
        yield Database(engine)
    finally:
        await engine.dispose()


def activation(user_id: uuid.UUID | None = None) -> Envelope[UserActivated]:
    return new_event(
        UserActivated(user_id=user_id or uuid.uuid4(), activated_at=datetime.now(UTC)),
        producer="auth-listener",
    )


async def test_use_cases_in_hand_together_commit_once_each_with_its_result(
    database: Database,
) -> None:
    grouped = GroupedUnitsOfWork(database.uow)
    events = [activation() for _ in range(10)]
    before = database.commits

    results = await asyncio.gather(*(grouped.run(announcing(e)) for e in events))

    assert results == [e.data.user_id for e in events]
    assert database.commits - before == 1
    assert await database.count("outbox") == 10
    assert await database.count("inbox") == 10


async def test_a_lone_use_case_runs_at_once_in_a_transaction_of_its_own(
    database: Database,
) -> None:
    grouped = GroupedUnitsOfWork(database.uow)
    first, second = activation(), activation()
    assert await grouped.run(announcing(first)) == first.data.user_id
    assert await grouped.run(announcing(second)) == second.data.user_id
    assert await database.count("outbox") == 2


async def test_one_bad_use_case_fails_alone_and_the_others_land(database: Database) -> None:
    grouped = GroupedUnitsOfWork(database.uow)
    good = [activation() for _ in range(5)]
    bad = activation(uuid.UUID(int=0))

    outcomes = await asyncio.gather(
        *(grouped.run(announcing(e)) for e in [*good[:2], bad, *good[2:]]),
        return_exceptions=True,
    )

    assert isinstance(outcomes[2], Refused)
    assert [o for o in outcomes if not isinstance(o, BaseException)] == [
        e.data.user_id for e in good
    ]
    # The bad one's row went with its own rollback; the group's with the group's.
    assert await database.count("outbox") == 5
    assert await database.count("inbox") == 5


async def test_an_event_delivered_twice_in_one_group_takes_effect_once(
    database: Database,
) -> None:
    grouped = GroupedUnitsOfWork(database.uow)
    twice = activation()

    results = await asyncio.gather(
        grouped.run(announcing(twice)),
        grouped.run(announcing(twice)),
        grouped.run(announcing(activation())),
    )

    assert sorted(str(r) for r in results[:2]) == sorted([str(twice.data.user_id), "None"])
    assert await database.count("outbox") == 2
