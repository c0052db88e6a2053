"""Exchanges and queues, declared the same way by every service.

Each consumer owns one durable quorum queue, bound to the routing keys it needs. Beside it:
- ``<queue>.retry.<n>s`` wait queues (one per delay tier) whose messages expire back into
  the work queue, so a failing message waits without blocking the ones behind it;
- ``<queue>.parked``, bound to the dead-letter exchange, where a message that cannot be
  handled lands with its reason in its headers, to be inspected and replayed by an operator.

Why this module speaks aio-pika while the rest of the kit speaks FastStream: FastStream
declares a queue only as a side effect of subscribing to it, and most of what is declared here
is never subscribed to by the declaring process: the wait and parking queues, and the other
services' queues that must exist before an event for them is published (queues.py). aio-pika is
the layer FastStream itself runs on (one connection: ``broker.connect()`` returns it), so this
is one AMQP client used at two levels, not two clients. The parked-messages tool uses it for
the same reason: it moves messages between queues nobody consumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel

EVENTS_EXCHANGE = "onboarding.events"

# A poison message that crashes the process before it can be parked is still parked by the
# broker after this many deliveries.
DELIVERY_LIMIT = 20


@dataclass(frozen=True)
class Binding:
    routing_key: str
    exchange: str | None = None  # None: the events exchange


@dataclass(frozen=True)
class ConsumerQueue:
    name: str
    bindings: tuple[Binding, ...]
    retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0)
    prefetch: int = 16
    events_exchange: str = EVENTS_EXCHANGE
    exchange_type: aio_pika.ExchangeType = field(default=aio_pika.ExchangeType.TOPIC)
    # Delete the queues after this long without consumers: for throw-away environments only.
    expires_seconds: int | None = None

    @property
    def dead_letter_exchange(self) -> str:
        return dead_letter_exchange_for(self.events_exchange)

    @property
    def parking_queue(self) -> str:
        return f"{self.name}.parked"

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1

    def retry_queue(self, failed_attempt: int) -> str:
        """The wait queue for a message whose attempt number ``failed_attempt`` failed."""
        delay = self.retry_delays[failed_attempt - 1]
        return f"{self.name}.retry.{delay:g}s"


def dead_letter_exchange_for(events_exchange: str) -> str:
    return f"{events_exchange}.dlx"


def _quorum_arguments(queue: ConsumerQueue, **extra: Any) -> dict[str, Any]:
    # at-least-once dead-lettering needs reject-publish overflow (RabbitMQ docs).
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        **_expiry(queue),
        **extra,
    }


def _expiry(queue: ConsumerQueue) -> dict[str, Any]:
    return {"x-expires": queue.expires_seconds * 1000} if queue.expires_seconds else {}


async def declare_events_exchange(
    channel: AbstractChannel, name: str
) -> aio_pika.abc.AbstractExchange:
    return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)


async def declare_consumer_queue(channel: AbstractChannel, queue: ConsumerQueue) -> None:
    """Declare (idempotently) the queue, its bindings, its wait queues and its parking queue.

    The parking queue comes last: publishers take its existence to mean that the work queue and
    all its bindings are in place (``queues.ConsumerQueuesGate``). Nothing is parked before the
    queue has a consumer, so it is not needed earlier."""
    await declare_events_exchange(channel, queue.events_exchange)
    await _declare_work_queue(channel, queue)
    await _declare_wait_queues(channel, queue)
    await _declare_parking_queue(channel, queue)


async def _declare_work_queue(channel: AbstractChannel, queue: ConsumerQueue) -> None:
    work = await channel.declare_queue(
        queue.name,
        durable=True,
        arguments=_quorum_arguments(
            queue,
            **{
                "x-dead-letter-exchange": queue.dead_letter_exchange,
                "x-dead-letter-routing-key": queue.name,
                "x-delivery-limit": DELIVERY_LIMIT,
            },
        ),
    )
    for binding in queue.bindings:
        exchange_name = binding.exchange or queue.events_exchange
        if not exchange_name.startswith("amq."):
            await channel.declare_exchange(exchange_name, queue.exchange_type, durable=True)
        await work.bind(exchange_name, routing_key=binding.routing_key)


async def _declare_wait_queues(channel: AbstractChannel, queue: ConsumerQueue) -> None:
    for attempt, delay in enumerate(queue.retry_delays, start=1):
        await channel.declare_queue(
            queue.retry_queue(attempt),
            durable=True,
            arguments=_quorum_arguments(
                queue,
                **{
                    "x-message-ttl": int(delay * 1000),
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": queue.name,
                },
            ),
        )


async def _declare_parking_queue(channel: AbstractChannel, queue: ConsumerQueue) -> None:
    dlx = await channel.declare_exchange(
        queue.dead_letter_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    parked = await channel.declare_queue(
        queue.parking_queue, durable=True, arguments={"x-queue-type": "quorum", **_expiry(queue)}
    )
    await parked.bind(dlx, routing_key=queue.name)
