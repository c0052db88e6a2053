"""The examples of docs/integrating.md, run against the real broker: what an identity provider
publishes is a valid UserLoggedIn, and an outside consumer gets UserCreated and
UserActivated once each, whatever else travels on the exchange."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import aio_pika
import pytest

from onboarding_shared.contract import (
    Envelope,
    UserActivated,
    UserCreated,
    UserLoggedIn,
    new_event,
)
from tests.support.broker import EventProbe, Namespace, eventually, publish_raw

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_identity_provider_example_publishes_a_valid_user_logged_in(
    amqp_url: str, namespace: Namespace, probe: EventProbe
) -> None:
    publisher = example("publish_user_logged_in")
    envelope = publisher.user_logged_in(email="ada@example.com", source="keycloak")
    await publisher.publish(amqp_url, envelope, exchange=namespace.exchange)

    (message,) = await eventually(lambda: probe.messages)
    assert message.routing_key == "user.logged_in.v1"
    assert message.message_id == envelope["event_id"]
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.content_type == "application/json"
    event = Envelope[UserLoggedIn].model_validate_json(message.body)
    assert event.data.email == "ada@example.com"
    assert event.data.source == "keycloak"


def user_created() -> Envelope[UserCreated]:
    data = UserCreated(
        user_id=uuid.uuid4(),
        email="ada@example.com",
        username="ada",
        name="Ada",
        roles=["member"],
        status="pending",
        created_at=datetime.now(UTC),
    )
    return new_event(data, producer="users")


async def test_the_consumer_example_handles_each_user_event_once(
    amqp_url: str, namespace: Namespace
) -> None:
    consumer = example("consume_user_events")
    handled: list[dict[str, Any]] = []

    async def keep(envelope: dict[str, Any]) -> None:
        handled.append(envelope)

    queue_name = namespace.queue("crm.onboarding-users")
    await declare_exchange(amqp_url, namespace.exchange)  # the services declare it
    stop = asyncio.Event()
    running = asyncio.create_task(
        consumer.consume(
            amqp_url,
            consumer.OncePerEvent(keep),
            queue_name=queue_name,
            exchange=namespace.exchange,
            stop=stop,
        )
    )
    try:
        await until_bound(amqp_url, queue_name)
        created = user_created()
        activated = new_event(
            UserActivated(user_id=created.data.user_id, activated_at=datetime.now(UTC)),
            producer="auth-listener",
        )
        newer = created.model_dump(mode="json") | {"event_version": 2, "extra": "ignored"}
        for body, key in (
            (created.to_json(), "user.created.v1"),
            (created.to_json(), "user.created.v1"),  # a redelivery
            (activated.to_json(), "user.activated.v1"),
        ):
            await publish_raw(amqp_url, namespace.exchange, key, body)
        newer_body = json.dumps(newer).encode()  # a future major version, on the old key
        await publish_raw(amqp_url, namespace.exchange, "user.created.v1", newer_body)
        await eventually(lambda: len(handled) == 2)
        await asyncio.sleep(0.3)  # nothing more arrives
    finally:
        stop.set()
        await running
        await delete_queue(amqp_url, queue_name)
    assert [e["event_type"] for e in handled] == ["UserCreated", "UserActivated"]


async def declare_exchange(amqp_url: str, name: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)


async def until_bound(amqp_url: str, queue_name: str) -> None:
    """Until the example has declared its queue, and a moment for its bindings."""

    async def exists() -> bool:
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.ChannelClosed):
                await channel.get_queue(queue_name, ensure=True)
                return True
        return False

    await eventually(exists, timeout=10)
    await asyncio.sleep(0.3)


async def delete_queue(amqp_url: str, queue_name: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue_name)
