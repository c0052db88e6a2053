"""Broker helpers: a private namespace per test, and a probe that records published events."""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from onboarding_shared.settings import broker_user
from onboarding_shared.tools import parked
from tests.support.waiting import eventually as eventually  # where the tests import it from

# Every queue a service declares, without the prefix (tests/unit/test_topology_names.py keeps
# the list complete); each test namespace deletes them when it ends. QUEUE_EXPIRES_SECONDS drops
# whatever a killed run leaves behind.
KNOWN_QUEUES = parked.KNOWN_QUEUES
QUEUE_EXPIRES_SECONDS = 120
RETRY_SUFFIXES = (".retry.0.2s", ".retry.0.5s", ".retry.1s", ".retry.2s", ".retry.5s", ".retry.30s")


@dataclass(frozen=True)
class Namespace:
    """Exchange and queue names no other test run uses."""

    exchange: str
    queue_prefix: str

    @classmethod
    def fresh(cls) -> Namespace:
        tag = f"t{uuid.uuid4().hex[:10]}"
        return cls(exchange=f"{tag}.events", queue_prefix=f"{tag}.")

    @property
    def environment(self) -> dict[str, str]:
        return {
            "EVENTS_EXCHANGE": self.exchange,
            "QUEUE_PREFIX": self.queue_prefix,
            "QUEUE_EXPIRES_SECONDS": str(QUEUE_EXPIRES_SECONDS),
        }

    def queue(self, name: str) -> str:
        return f"{self.queue_prefix}{name}"

    async def delete(self, amqp_url: str) -> None:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            for base in KNOWN_QUEUES:
                for suffix in ("", ".parked", *RETRY_SUFFIXES):
                    channel = await connection.channel()
                    with contextlib.suppress(aio_pika.exceptions.AMQPError):
                        await channel.queue_delete(self.queue(base) + suffix)
            channel = await connection.channel()
            for exchange in (self.exchange, f"{self.exchange}.dlx", f"{self.exchange}.mail"):
                try:
                    await channel.exchange_delete(exchange)
                except aio_pika.exceptions.AMQPError:
                    channel = await connection.channel()


# What EventProbe.caught_up publishes: no service binds it.
MARKER_ROUTING_KEY = "tests.probe.marker"


@dataclass
class EventProbe:
    """Binds a private queue to the events and mail exchanges; keeps every message it sees."""

    amqp_url: str
    exchange: str
    routing_key: str = "#"
    messages: list[AbstractIncomingMessage] = field(default_factory=list)
    _connection: Any = None
    _markers: set[str | None] = field(default_factory=set)

    async def start(self) -> EventProbe:
        self._connection = await aio_pika.connect_robust(self.amqp_url)
        channel = await self._connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        # The mail exchange too: what only the mailer reads in production, tests look at.
        for name in (self.exchange, f"{self.exchange}.mail"):
            exchange = await channel.declare_exchange(
                name, aio_pika.ExchangeType.TOPIC, durable=True
            )
            await queue.bind(exchange, self.routing_key)
        await queue.consume(self._keep, no_ack=True)
        return self

    async def _keep(self, message: AbstractIncomingMessage) -> None:
        if message.routing_key == MARKER_ROUTING_KEY:
            self._markers.add(message.message_id)
        else:
            self.messages.append(message)

    async def caught_up(self) -> None:
        """Until whatever was published before this call has arrived: a marker is published
        after it, and the probe's one queue keeps the order. So "nothing more arrives" is
        waited for, not guessed with a sleep. The marker is not kept in ``messages``."""
        marker = str(uuid.uuid4())
        await publish_raw(
            self.amqp_url, self.exchange, MARKER_ROUTING_KEY, b"{}", message_id=marker
        )
        await eventually(lambda: marker in self._markers)

    def events(self, routing_key: str | None = None) -> list[dict[str, Any]]:
        """The events seen, each once: delivery is at least once (a publish whose confirm came
        too late is sent again), so a second copy of an ``event_id`` is not a second event."""
        seen: set[str] = set()
        events = []
        for message in self.messages:
            if routing_key is not None and message.routing_key != routing_key:
                continue
            event = json.loads(message.body)
            event_id = event.get("event_id") if isinstance(event, dict) else None
            if event_id is not None:
                if event_id in seen:
                    continue
                seen.add(event_id)
            events.append(event)
        return events

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()


async def publish_raw(
    amqp_url: str,
    exchange: str,
    routing_key: str,
    body: bytes,
    *,
    message_id: str | None = None,
    content_type: str = "application/json",
    user_id: str | None = None,
) -> None:
    """Publish ``body`` naming ``user_id`` (the broker refuses any but the connection's own);
    by default the connection's user, as our services do, so consumers trust it like theirs."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        target = await channel.get_exchange(exchange, ensure=False)
        await target.publish(
            aio_pika.Message(
                body,
                message_id=message_id or str(uuid.uuid4()),
                content_type=content_type,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                user_id=user_id or broker_user(amqp_url),
            ),
            routing_key=routing_key,
            mandatory=True,
            timeout=10,
        )


async def drain(amqp_url: str, queue_name: str) -> list[AbstractIncomingMessage]:
    """Take every message waiting in ``queue_name`` (acknowledging them)."""
    taken = []
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name, ensure=False)
        while (message := await queue.get(fail=False, timeout=5)) is not None:
            await message.ack()
            taken.append(message)
    return taken
