"""The reliable consumer on the real broker: a message that keeps failing waits between
attempts, then is parked with its reason, without holding up the messages behind it; and a
stop lets the message in hand finish."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import pytest
from faststream.rabbit import RabbitBroker

from onboarding_shared.messaging.consumer import Delivery, ReliableConsumer
from onboarding_shared.messaging.topology import Binding, ConsumerQueue, declare_consumer_queue
from onboarding_shared.messaging.trust import BusIdentity
from onboarding_shared.runtime import build_broker
from onboarding_shared.settings import ServiceSettings
from tests.support.broker import Namespace, drain, eventually, publish_raw

pytestmark = pytest.mark.integration


class Recorder:
    def __init__(self, *, slow: float = 0.0) -> None:
        self.attempts: dict[bytes, list[int]] = {}
        self.finished: list[bytes] = []
        self.slow = slow

    async def __call__(self, body: bytes, delivery: Delivery) -> None:
        self.attempts.setdefault(body, []).append(delivery.attempt)
        if body.startswith(b"poison"):
            raise RuntimeError("cannot handle this one")
        await asyncio.sleep(self.slow)  # a handler still busy when the test stops the consumer
        self.finished.append(body)


def queue_for(namespace: Namespace) -> ConsumerQueue:
    return ConsumerQueue(
        name=namespace.queue("mailer.invitations"),  # a known name, so the namespace cleans it up
        bindings=(Binding("test.v1"),),
        retry_delays=(1.0, 2.0),
        prefetch=4,
        events_exchange=namespace.exchange,
    )


class Running:
    """A consumer on its queue, as a service's runtime runs it."""

    def __init__(self, broker: RabbitBroker, consumer: ReliableConsumer) -> None:
        self.broker = broker
        self.consumer = consumer

    async def stop(self) -> None:
        await self.consumer.stop(graceful_timeout=10)
        await self.broker.stop()


async def running(
    amqp_url: str,
    queue: ConsumerQueue,
    recorder: Recorder | DatabaseAway,
    consumer: list[ReliableConsumer] | None = None,
) -> Running:
    settings = ServiceSettings(
        database_url="sqlite+aiosqlite:///unused.db",
        http_port=1,
        amqp_url=amqp_url,
        graceful_timeout_seconds=10,
    )
    broker = build_broker(settings, service="tests")
    identity = BusIdentity(service="tests", broker_user=settings.broker_user)
    reliable = ReliableConsumer(queue, recorder, publish_timeout=5)
    if consumer is not None:
        consumer.append(reliable)
    connection = await broker.connect()
    async with connection.channel() as channel:
        await declare_consumer_queue(channel, queue)
    await broker.start()
    await reliable.start(broker, connection, identity)
    return Running(broker, reliable)


@pytest.fixture
async def queue(namespace: Namespace) -> AsyncIterator[ConsumerQueue]:
    yield queue_for(namespace)


async def test_a_failing_message_is_retried_then_parked_while_others_flow(
    amqp_url: str, namespace: Namespace, queue: ConsumerQueue
) -> None:
    recorder = Recorder()
    broker = await running(amqp_url, queue, recorder)
    try:
        await publish_raw(amqp_url, namespace.exchange, "test.v1", b"poison-1")
        for n in range(5):
            await publish_raw(amqp_url, namespace.exchange, "test.v1", f"fine-{n}".encode())
        await eventually(lambda: len(recorder.finished) == 5)
        # The others did not wait for its retries (3 attempts take at least 3 s).
        assert len(recorder.attempts[b"poison-1"]) < 3
        await eventually(lambda: recorder.attempts[b"poison-1"] == [1, 2, 3])
        parked = await eventually(lambda: drain(amqp_url, queue.parking_queue))
    finally:
        await broker.stop()

    [message] = parked
    assert message.body == b"poison-1"
    assert (
        message.headers["x-parked-reason"]
        == "failed after 3 attempts: RuntimeError: cannot handle this one"
    )
    assert message.headers["x-original-queue"] == queue.name
    assert message.headers["x-original-routing-key"] == "test.v1"
    assert message.message_id  # kept, so a replay stays deduplicable


async def test_stopping_lets_the_message_in_hand_finish_and_leaves_the_rest_queued(
    amqp_url: str, namespace: Namespace, queue: ConsumerQueue
) -> None:
    recorder = Recorder(slow=1.0)
    broker = await running(amqp_url, queue, recorder)
    await publish_raw(amqp_url, namespace.exchange, "test.v1", b"in-hand")
    await eventually(lambda: b"in-hand" in recorder.attempts)
    await broker.stop()
    assert recorder.finished == [b"in-hand"]

    await publish_raw(amqp_url, namespace.exchange, "test.v1", b"after-stop")
    again = Recorder()
    broker = await running(amqp_url, queue, again)
    try:
        await eventually(lambda: again.finished == [b"after-stop"])
    finally:
        await broker.stop()
    assert b"in-hand" not in again.attempts  # it was acknowledged before the stop completed


class DatabaseAway:
    """Fails as a handler does while its database is unreachable, then recovers."""

    def __init__(self, outage_deliveries: int) -> None:
        self.outage_deliveries = outage_deliveries
        self.attempts: list[int] = []
        self.bodies: set[bytes] = set()
        self.handled = 0

    async def __call__(self, body: bytes, delivery: Delivery) -> None:
        self.attempts.append(delivery.attempt)
        self.bodies.add(body)
        if len(self.attempts) <= self.outage_deliveries:
            raise ConnectionRefusedError(111, "Connect call failed ('10.0.0.5', 5432)")
        self.handled += 1


async def test_an_outage_longer_than_every_retry_spends_no_attempt_and_parks_nothing(
    amqp_url: str, namespace: Namespace, queue: ConsumerQueue
) -> None:
    # More failed deliveries than the queue has attempts (3): only the message's own faults
    # count, and an unreachable database is not one.
    handler = DatabaseAway(outage_deliveries=4)
    broker = await running(amqp_url, queue, handler)
    try:
        await publish_raw(amqp_url, namespace.exchange, "test.v1", b"during-an-outage")
        await eventually(lambda: handler.handled == 1, timeout=30)
    finally:
        await broker.stop()
    assert handler.attempts == [1, 1, 1, 1, 1]
    assert await drain(amqp_url, queue.parking_queue) == []


async def test_through_an_outage_the_message_stays_in_hand_and_the_rest_stays_queued(
    amqp_url: str, namespace: Namespace, queue: ConsumerQueue
) -> None:
    # The queue's prefetch is 4: 4 messages in hand, the other 6 wait in the broker, visible.
    handler = DatabaseAway(outage_deliveries=10_000)
    broker = await running(amqp_url, queue, handler)
    try:
        for n in range(10):
            await publish_raw(amqp_url, namespace.exchange, "test.v1", f"m{n}".encode())
        await eventually(lambda: len(handler.attempts) >= 12)
        ready = await ready_count(amqp_url, queue.name)
    finally:
        await broker.stop()
    assert ready == 6 and len(handler.bodies) == 4


async def test_a_stop_during_an_outage_moves_the_messages_in_hand_to_a_wait_queue_at_once(
    amqp_url: str, namespace: Namespace, queue: ConsumerQueue
) -> None:
    handler = DatabaseAway(outage_deliveries=10_000)
    consumers: list[ReliableConsumer] = []
    broker = await running(amqp_url, queue, handler, consumers)
    await publish_raw(amqp_url, namespace.exchange, "test.v1", b"in-hand")
    await eventually(lambda: len(handler.attempts) >= 2)
    started = asyncio.get_running_loop().time()
    consumers[0].stop_waiting()
    await broker.stop()
    # Not the graceful timeout (10 s): the pause ends as soon as the stop begins.
    assert asyncio.get_running_loop().time() - started < 3
    # Back from the first wait queue (its delay is retry_delays[0]).
    [held] = await eventually(lambda: drain(amqp_url, queue.name))
    assert held.body == b"in-hand" and held.headers["x-holds"] == 1
    assert held.headers["x-attempt"] == 1  # no attempt spent


async def ready_count(amqp_url: str, queue_name: str) -> int:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue_name, passive=True)
        return declared.declaration_result.message_count or 0
