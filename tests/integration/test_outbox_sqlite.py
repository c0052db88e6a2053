"""The outbox relay on SQLite, where every transaction holds the database's one write lock: a
publish that takes its time (the broker slow or away) must not hold up the service's writes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from onboarding_shared.contract import UserActivated, new_event
from onboarding_shared.db import create_engine, new_metadata, session_factory
from onboarding_shared.messaging.outbox import OutboxRelay, define_outbox_table, outbox_row
from onboarding_shared.messaging.publisher import OutgoingMessage


class SlowPublisher:
    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def publish(self, message: OutgoingMessage) -> None:
        self.started.set()
        await self.release.wait()


def an_event_row() -> dict[str, object]:
    return outbox_row(
        new_event(UserActivated(user_id=uuid.uuid4(), activated_at=datetime.now(UTC)), producer="t")
    )


async def test_a_slow_publish_does_not_hold_up_the_services_writes(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    metadata = new_metadata()
    outbox = define_outbox_table(metadata)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        await session.execute(insert(outbox), [an_event_row()])
    publisher = SlowPublisher()
    relay = OutboxRelay(sessions, outbox, publisher)
    try:
        relaying = asyncio.create_task(relay.relay_once())
        await asyncio.wait_for(publisher.started.wait(), timeout=5)

        # Meanwhile a request commits its own change and event, at once.
        async with asyncio.timeout(2), sessions() as session, session.begin():
            await session.execute(insert(outbox), [an_event_row()])

        publisher.release.set()
        assert await asyncio.wait_for(relaying, timeout=5) == 1
        async with sessions() as session:
            published = (await session.execute(select(outbox.c.published_at))).scalars().all()
        assert sorted(p is not None for p in published) == [False, True]
    finally:
        await engine.dispose()
