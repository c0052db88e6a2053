"""The figures measured apart from the four processes: the outbox relay in this process (its
rate is hard to isolate inside the whole flow, where the API feeds it), and the users service's
memory under avatar uploads (issue 10)."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from datetime import UTC, datetime

import httpx
from faststream.rabbit import Channel, RabbitBroker
from PIL import Image
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from devtools.bench_infra import rss_mb
from devtools.bench_system import System
from invitations.adapters.orm import messaging as invitations_tables
from invitations.bootstrap import MIGRATIONS as INVITATIONS_MIGRATIONS
from onboarding_shared.contract import UserActivated, new_event
from onboarding_shared.db import create_engine, session_factory
from onboarding_shared.messaging.outbox import OutboxRelay, RelaySettings, outbox_row
from onboarding_shared.messaging.publisher import RabbitPublisher
from onboarding_shared.schema import migrate
from onboarding_shared.settings import broker_user

OUTBOX_ROWS = 5000
RELAY_EXCHANGE = "bench.relay"
AVATAR_UPLOADS = 6
# What the users service may reach while avatars are uploaded (issue 10: one 3 KB PNG took it
# to 474 MB, six at once to 2.2 GB).
AVATAR_RSS_CEILING_MB = 250


async def relay_rate(amqp_url: str, database_url: str) -> float:
    """Rows published per second by the invitations' outbox relay with the services' default
    settings (RelaySettings()), to a quorum queue on the bench's broker."""
    await asyncio.to_thread(migrate, database_url, INVITATIONS_MIGRATIONS)
    engine = create_engine(database_url)
    broker = RabbitBroker(amqp_url, default_channel=Channel(on_return_raises=True))
    try:
        await _fill_outbox(engine)
        connection = await broker.connect()
        async with connection.channel() as channel:
            target = await channel.declare_exchange(RELAY_EXCHANGE, "topic", durable=True)
            queue = await channel.declare_queue(
                f"{RELAY_EXCHANGE}.sink", arguments={"x-queue-type": "quorum"}, durable=True
            )
            await queue.bind(target, "#")
        relay = OutboxRelay(
            session_factory(engine),
            invitations_tables.outbox,
            RabbitPublisher(broker, RELAY_EXCHANGE, timeout=30, user_id=broker_user(amqp_url)),
            RelaySettings(),
        )
        started = time.perf_counter()
        while await relay.relay_once():
            pass
        return OUTBOX_ROWS / (time.perf_counter() - started)
    finally:
        await broker.stop()
        await engine.dispose()


async def _fill_outbox(engine: AsyncEngine) -> None:
    rows = [
        outbox_row(
            new_event(
                UserActivated(user_id=uuid.uuid4(), activated_at=datetime.now(UTC)),
                producer="bench",
            )
        )
        for _ in range(OUTBOX_ROWS)
    ]
    async with session_factory(engine)() as session, session.begin():
        await session.execute(insert(invitations_tables.outbox), rows)


def png_bomb() -> bytes:
    """5000x5000 pixels, 1 bit each, ~3 KB: under the old 25-megapixel limit."""
    output = io.BytesIO()
    Image.new("1", (5000, 5000)).save(output, format="PNG", optimize=True)
    return output.getvalue()


def largest_allowed_png() -> bytes:
    """2000x2000 pixels (the default AVATAR_MAX_PIXELS) with a palette: the costliest decode
    measured per pixel, since it is converted to RGBA and scaled premultiplied."""
    image = Image.new("P", (2000, 2000))
    image.putpalette([n % 256 for n in range(768)])
    image.paste(7, (0, 0, 1000, 1000))
    output = io.BytesIO()
    image.save(output, format="PNG", optimize=True)
    return output.getvalue()


async def avatar_memory(system: System, user_id: str) -> list[str]:
    """Concurrent uploads to the running users service: its peak RSS, and 5 s later."""
    users = system.services["users"]
    path = f"/api/v1/users/{user_id}/avatar"
    idle = users.rss_mb()
    lines = [f"users service before the uploads: {idle:.0f} MB RSS"]
    async with httpx.AsyncClient(
        base_url=users.url, headers=system.admin_headers(), timeout=120
    ) as client:
        for label, upload in [
            ("5000x5000 1-bit PNGs (a decompression bomb)", png_bomb()),
            ("2000x2000 palette PNGs (the largest allowed)", largest_allowed_png()),
        ]:
            codes, peak = await _upload_at_once(client, users.pid, path, upload)
            await asyncio.sleep(5)
            verdict = "within" if peak <= AVATAR_RSS_CEILING_MB else "OVER"
            lines.append(
                f"{AVATAR_UPLOADS} concurrent {label} of {len(upload) / 1000:.0f} KB, "
                f"answers {sorted(set(codes))}: peak {peak:.0f} MB RSS ({verdict} the "
                f"{AVATAR_RSS_CEILING_MB} MB ceiling), {users.rss_mb():.0f} MB 5 s later"
            )
    return lines


async def _upload_at_once(
    client: httpx.AsyncClient, pid: int, path: str, upload: bytes
) -> tuple[list[int], float]:
    """The uploads, all at once, with the highest RSS sampled meanwhile (every 5 ms)."""
    peak = 0.0
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    responses = await asyncio.gather(
        *(
            client.put(path, files={"image": ("me.png", upload, "image/png")})
            for _ in range(AVATAR_UPLOADS)
        )
    )
    done.set()
    await sampler
    return [response.status_code for response in responses], peak
