"""The outbox relay's stop: what was committed while the service was stopping goes out in one
last pass, instead of waiting for the next start."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import insert, select

from onboarding_shared.db import create_engine, new_metadata, session_factory
from onboarding_shared.messaging.outbox import (
    OutboxRelay,
    RelaySettings,
    define_outbox_table,
    outbox_row,
)
from onboarding_shared.messaging.publisher import OutgoingMessage
from tests.support.factories import invitation_requested
from tests.support.waiting import eventually


class KeepingPublisher:
    def __init__(self) -> None:
        self.published: list[OutgoingMessage] = []

    async def publish(self, message: OutgoingMessage) -> None:
        self.published.append(message)


class CountingRelay(OutboxRelay):
    """The relay, recording how many rows each of its passes published."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.passes: list[int] = []

    async def relay_once(self) -> int:
        published = await super().relay_once()
        self.passes.append(published)
        return published


async def test_rows_committed_while_stopping_go_out_in_a_last_pass() -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    outbox = define_outbox_table(metadata := new_metadata())
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    publisher = KeepingPublisher()
    # Polls once an hour and is not told of the row: only the last pass can take it.
    relay = CountingRelay(sessions, outbox, publisher, RelaySettings(poll_interval=3600))
    running = asyncio.create_task(relay.run())
    await eventually(lambda: relay.passes == [0])  # its first pass found nothing; it sleeps
    event = invitation_requested()
    async with sessions() as session, session.begin():
        await session.execute(insert(outbox), [outbox_row(event)])

    relay.stop()
    await asyncio.wait_for(running, timeout=10)
    async with sessions() as session:
        published_at = (await session.execute(select(outbox.c.published_at))).scalar_one()
    await engine.dispose()
    assert relay.passes == [0, 1]  # the row went out in the last pass
    assert [m.message_id for m in publisher.published] == [str(event.event_id)]
    assert published_at is not None
