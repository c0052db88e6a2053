"""The outbox relay's stop: what was committed while the service was stopping goes out in one
last pass, instead of waiting for the next start."""

from __future__ import annotations

import asyncio

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


class KeepingPublisher:
    def __init__(self) -> None:
        self.published: list[OutgoingMessage] = []

    async def publish(self, message: OutgoingMessage) -> None:
        self.published.append(message)


async def test_rows_committed_while_stopping_go_out_in_a_last_pass() -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    outbox = define_outbox_table(metadata := new_metadata())
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    publisher = KeepingPublisher()
    # Polls once an hour and is not told of the row: only the last pass can take it.
    relay = OutboxRelay(sessions, outbox, publisher, RelaySettings(poll_interval=3600))
    running = asyncio.create_task(relay.run())
    await asyncio.sleep(0.1)  # its first pass found nothing; it sleeps
    event = invitation_requested()
    async with sessions() as session, session.begin():
        await session.execute(insert(outbox), [outbox_row(event)])

    relay.stop()
    await asyncio.wait_for(running, timeout=10)
    async with sessions() as session:
        published_at = (await session.execute(select(outbox.c.published_at))).scalar_one()
    await engine.dispose()
    assert [m.message_id for m in publisher.published] == [str(event.event_id)]
    assert published_at is not None
