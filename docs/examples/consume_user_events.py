"""Follow accounts from another system: UserCreated and UserActivated, from a durable queue of
your own. Needs only aio-pika (`pip install aio-pika`).

    AMQP_URL=amqp://crm:secret@rabbitmq:5672/ python consume_user_events.py
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

EXCHANGE = os.environ.get("EVENTS_EXCHANGE", "onboarding.events")
QUEUE = os.environ.get("QUEUE", "crm.onboarding-users")  # yours: name it after your system
WANTED = {("UserCreated", 1): "user.created.v1", ("UserActivated", 1): "user.activated.v1"}

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class OncePerEvent:
    """Delivery is at least once: remember the event ids already handled. In memory here;
    in production, a table with a unique event_id written in the same transaction as the
    change the event causes."""

    def __init__(self, handle: Handler) -> None:
        self._handle = handle
        self._seen: set[str] = set()

    async def __call__(self, envelope: dict[str, Any]) -> None:
        if envelope["event_id"] in self._seen:
            return
        await self._handle(envelope)
        self._seen.add(envelope["event_id"])


async def on_message(message: AbstractIncomingMessage, handle: Handler) -> None:
    # A failure rejects the message (no requeue loop): give the queue a dead-letter exchange
    # to keep such messages for a look.
    async with message.process(requeue=False):
        envelope = json.loads(message.body)
        key = (envelope.get("event_type"), envelope.get("event_version"))
        if key not in WANTED:
            return  # a newer major version or another event: not ours to handle
        # Read only the fields you need: producers may add new ones at any time.
        await handle(envelope)


async def consume(
    amqp_url: str,
    handle: Handler,
    *,
    queue_name: str = QUEUE,
    exchange: str = EXCHANGE,
    stop: asyncio.Event | None = None,
) -> None:
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=32)
        queue = await channel.declare_queue(
            queue_name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        for routing_key in WANTED.values():
            await queue.bind(exchange, routing_key)

        async def deliver(message: AbstractIncomingMessage) -> None:
            await on_message(message, handle)

        tag = await queue.consume(deliver)
        await (stop or asyncio.Event()).wait()  # forever, unless told to stop
        await queue.cancel(tag)


async def print_event(envelope: dict[str, Any]) -> None:
    data = envelope["data"]
    print(envelope["event_type"], data["user_id"], data.get("email", ""))


if __name__ == "__main__":
    url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
    asyncio.run(consume(url, OncePerEvent(print_event)))
