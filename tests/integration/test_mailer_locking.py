"""The mailer's lock on an email while it goes out, on both databases: duplicate deliveries of
one event send one mail (replicas too, on PostgreSQL), and a slow SMTP answer for one mail
holds up no other (on SQLite the database's single write lock is not held while sending)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mailer.adapters.locks import KeyedLocks
from mailer.adapters.orm import map_domain, messaging
from mailer.adapters.unit_of_work import SqlAlchemyMailerUnitOfWork
from mailer.bootstrap import MIGRATIONS
from mailer.service_layer import services
from onboarding_shared.db import create_engine, session_factory
from onboarding_shared.messaging.consumer import Delivery
from onboarding_shared.schema import migrate
from tests.support.databases import DatabaseFactory
from tests.support.factories import invitation_requested
from tests.support.fake_mailer import ScriptedSender
from tests.support.waiting import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

FIRST = Delivery(attempt=1, max_attempts=3, routing_key="invitation.requested.v2")
RETRY_FOR = timedelta(hours=1)
# Sessions of the test's database blocked on a lock: a delivery waiting for an email's row.
WAITING_FOR_A_LOCK = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


class WatchedLocks(KeyedLocks):
    """The process's email locks, counting the deliveries waiting for one (SQLite's lock)."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = 0

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        self.waiting += 1
        acquired = False
        try:
            async with super().hold(key):
                self.waiting -= 1
                acquired = True
                yield
        finally:
            if not acquired:
                self.waiting -= 1


class UnitsOfWork:
    """Units of work as the mailer's bootstrap makes them: one engine, one set of locks; and
    how many deliveries wait for an email's lock (the row's on PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        self._locks = WatchedLocks()

    def __call__(self) -> SqlAlchemyMailerUnitOfWork:
        return SqlAlchemyMailerUnitOfWork(
            self._sessions, messaging, producer="mailer", email_locks=self._locks
        )

    async def waiting_for_a_lock(self) -> int:
        if self._engine.dialect.name == "sqlite":
            return self._locks.waiting
        async with self._engine.connect() as connection:
            waiting = await connection.scalar(WAITING_FOR_A_LOCK)
        return int(waiting or 0)


@pytest.fixture(params=["sqlite", "postgresql"])
async def units_of_work(
    request: pytest.FixtureRequest, tmp_path: Path, databases: DatabaseFactory
) -> AsyncIterator[UnitsOfWork]:
    map_domain()
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'mailer'}.db"
        await asyncio.to_thread(migrate, url, MIGRATIONS)
    else:
        url = await databases.create_migrated("mailer", MIGRATIONS)
    engine = create_engine(url)
    yield UnitsOfWork(engine)
    await engine.dispose()


class HeldSender(ScriptedSender):
    """Sends once ``release`` is set; ``sending`` says a send has begun."""

    def __init__(self) -> None:
        super().__init__()
        self.sending = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, message: EmailMessage) -> None:
        self.sending.set()
        await self.release.wait()
        await super().send(message)


async def deliver(
    units_of_work: UnitsOfWork, sender: ScriptedSender, outgoing: services.OutgoingEmail
) -> services.Settled | None:
    return await services.deliver(units_of_work(), sender, outgoing, FIRST, retry_for=RETRY_FOR)


async def test_duplicate_deliveries_of_one_event_send_one_mail(
    units_of_work: UnitsOfWork,
) -> None:
    outgoing = services.invitation_email(invitation_requested(), sender="team@acme.test")
    held = HeldSender()
    first = asyncio.create_task(deliver(units_of_work, held, outgoing))
    await asyncio.wait_for(held.sending.wait(), 10)

    duplicate_sender = ScriptedSender()
    duplicate = asyncio.create_task(deliver(units_of_work, duplicate_sender, outgoing))
    await eventually(units_of_work.waiting_for_a_lock)  # the duplicate waits for the first one
    held.release.set()

    settled = await asyncio.wait_for(first, 10)
    assert settled is not None and settled.sent
    assert await asyncio.wait_for(duplicate, 10) is None  # found it settled
    assert len(held.sent) + len(duplicate_sender.sent) == 1


async def test_a_slow_smtp_answer_for_one_mail_holds_up_no_other(
    units_of_work: UnitsOfWork,
) -> None:
    slow = services.invitation_email(invitation_requested(), sender="team@acme.test")
    other = services.invitation_email(invitation_requested(), sender="team@acme.test")
    held = HeldSender()
    slow_task = asyncio.create_task(deliver(units_of_work, held, slow))
    await asyncio.wait_for(held.sending.wait(), 10)

    quick = ScriptedSender()
    # While the slow mail waits for its server, the other one goes out and is recorded.
    settled = await asyncio.wait_for(deliver(units_of_work, quick, other), 10)
    assert settled is not None and settled.sent
    assert len(quick.sent) == 1

    held.release.set()
    slow_settled = await asyncio.wait_for(slow_task, 10)
    assert slow_settled is not None and slow_settled.sent


async def test_a_delivery_cancelled_while_it_waits_leaves_no_lock_behind(
    units_of_work: UnitsOfWork,
) -> None:
    """A consumer's task can be cancelled at any await (a stop, a channel closing): the
    delivery it was waiting behind, and the next one, must still go through."""
    outgoing = services.invitation_email(invitation_requested(), sender="team@acme.test")
    held = HeldSender()
    first = asyncio.create_task(deliver(units_of_work, held, outgoing))
    await asyncio.wait_for(held.sending.wait(), 10)

    waiting = asyncio.create_task(deliver(units_of_work, ScriptedSender(), outgoing))
    await eventually(units_of_work.waiting_for_a_lock)  # it reached the lock and waits there
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    held.release.set()
    await asyncio.wait_for(first, 10)

    again = ScriptedSender()
    assert await asyncio.wait_for(deliver(units_of_work, again, outgoing), 10) is None
    assert not again.sent
