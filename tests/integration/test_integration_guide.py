"""The examples of docs/integrating.md, run against the real broker, in Python and in Node.js
(docs/examples/node, amqplib and Ajv): what an identity provider publishes is a valid
UserLoggedIn, and an outside consumer gets UserCreated and UserActivated once each, whatever
else travels on the exchange."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

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
NODE_EXAMPLES = EXAMPLES / "node"


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
        await until_bound(amqp_url, namespace.exchange, consumer.WANTED.values())
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
        # Last, another user: once it is handled, so is every message before it (one queue).
        last = user_created()
        await publish_raw(amqp_url, namespace.exchange, "user.created.v1", last.to_json())
        await eventually(lambda: len(handled) >= 3)
    finally:
        stop.set()
        await running
        await delete_queue(amqp_url, queue_name)
    assert [e["event_type"] for e in handled] == ["UserCreated", "UserActivated", "UserCreated"]
    assert handled[-1]["event_id"] == str(last.event_id)


async def declare_exchange(amqp_url: str, name: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)


async def until_bound(amqp_url: str, exchange: str, routing_keys: Iterable[str]) -> None:
    """Until the example's queue is bound for every key: a mandatory probe is returned as
    unroutable until then. The example ignores the probe, an event type it does not know."""

    async def routed(routing_key: str) -> bool:
        try:
            await publish_raw(amqp_url, exchange, routing_key, b'{"event_type": "BindingProbe"}')
        except aio_pika.exceptions.DeliveryError:
            return False
        return True

    for routing_key in routing_keys:
        await eventually(partial(routed, routing_key), timeout=10)


async def delete_queue(amqp_url: str, queue_name: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(queue_name)


# The Node.js examples: run as a team would run them, `node <file>` with AMQP_URL and
# EVENTS_EXCHANGE, after `npm ci` from their lock file.


@pytest.fixture(scope="session")
def node() -> Iterator[str]:
    """The node binary, with the examples' locked dependencies installed. Fails (never skips)
    without Node.js: the examples are part of the contract's documentation."""
    binary, npm = shutil.which("node"), shutil.which("npm")
    if binary is None or npm is None:
        pytest.fail(
            "Node.js and npm are needed to test docs/examples/node: "
            "`apt-get install nodejs npm` (.ci/run installs them when node is missing)",
            pytrace=False,
        )
    installed = NODE_EXAMPLES / "node_modules" / ".package-lock.json"
    lock = NODE_EXAMPLES / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        done = subprocess.run(
            [npm, "ci", "--prefix", str(NODE_EXAMPLES), "--no-audit", "--no-fund"],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci in docs/examples/node failed:\n{done.stderr}", pytrace=False)
    yield binary


def node_environment(amqp_url: str, exchange: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "AMQP_URL": amqp_url, "EVENTS_EXCHANGE": exchange, **extra}


async def run_node(
    node: str, arguments: list[str], environment: dict[str, str]
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        node,
        *arguments,
        cwd=NODE_EXAMPLES,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def broker_user(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).username or "guest")


async def test_the_node_identity_provider_example_publishes_a_valid_user_logged_in(
    node: str, amqp_url: str, namespace: Namespace, probe: EventProbe
) -> None:
    environment = node_environment(amqp_url, namespace.exchange)
    code, out, err = await run_node(
        node, ["publish_user_logged_in.mjs", "ada@example.com"], environment
    )
    assert code == 0, err
    assert out.strip() == "published user.logged_in.v1 for ada@example.com"

    (message,) = await eventually(lambda: probe.messages)
    assert message.routing_key == "user.logged_in.v1"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.content_type == "application/json"
    assert message.type == "UserLoggedIn"
    # The broker user, which RabbitMQ vouches for: event.rejected.v1 names it as producer.
    assert message.user_id == broker_user(amqp_url)
    event = Envelope[UserLoggedIn].model_validate_json(message.body)
    assert message.message_id == str(event.event_id)
    assert message.correlation_id == event.correlation_id
    assert event.data.email == "ada@example.com"
    assert event.occurred_at.utcoffset() is not None


async def test_the_node_publisher_refuses_an_invalid_or_unroutable_login(
    node: str, amqp_url: str, namespace: Namespace, probe: EventProbe
) -> None:
    module = (NODE_EXAMPLES / "publish_user_logged_in.mjs").as_uri()
    script = f"""
        import {{ publish, userLoggedIn }} from {json.dumps(module)};
        const url = process.env.AMQP_URL;
        for (const [name, envelope, exchange] of [
          ["no identifier", userLoggedIn({{}}), process.env.EVENTS_EXCHANGE],
          ["bad time", {{ ...userLoggedIn({{ email: "ada@example.com" }}),
                          occurred_at: "2026-05-17T09:30:00" }}, process.env.EVENTS_EXCHANGE],
          ["unroutable", userLoggedIn({{ email: "ada@example.com" }}), process.env.EMPTY_EXCHANGE],
        ]) {{
          try {{
            await publish(url, envelope, {{ exchange }});
            console.log(`${{name}}: published`);
          }} catch (error) {{
            console.log(`${{name}}: ${{error.message}}`);
          }}
        }}
    """
    empty = f"{namespace.exchange}.nobody"
    await declare_exchange(amqp_url, empty)
    try:
        environment = node_environment(amqp_url, namespace.exchange, EMPTY_EXCHANGE=empty)
        code, out, err = await run_node(node, ["--input-type=module", "-e", script], environment)
    finally:
        await delete_exchange(amqp_url, empty)
    assert code == 0, err
    outcomes = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert outcomes["no identifier"].startswith("not a valid user.logged_in.v1 envelope")
    assert "must have required property 'email'" in outcomes["no identifier"]
    assert 'must match format "date-time"' in outcomes["bad time"]  # no time zone
    assert outcomes["unroutable"].startswith("not routed (312 NO_ROUTE)")
    await probe.caught_up()
    assert probe.messages == []  # nothing invalid left the publisher


async def test_the_node_consumer_example_handles_each_user_event_once(
    node: str, amqp_url: str, namespace: Namespace
) -> None:
    queue_name = namespace.queue("crm.onboarding-users")
    await declare_exchange(amqp_url, namespace.exchange)  # the services declare it
    process = await asyncio.create_subprocess_exec(
        node,
        "consume_user_events.mjs",
        cwd=NODE_EXAMPLES,
        env=node_environment(amqp_url, namespace.exchange, QUEUE=queue_name),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        ready = await asyncio.wait_for(process.stderr.readline(), timeout=20)
        assert ready.decode().strip() == f"consuming from {queue_name}", ready

        created = user_created()
        activated = new_event(
            UserActivated(
                user_id=created.data.user_id,
                activated_at=datetime.now(UTC),
                created_at=created.data.created_at,
            ),
            producer="auth-listener",
        )
        newer = created.model_dump(mode="json") | {"event_version": 2, "extra": "ignored"}
        invalid = user_created().model_dump(mode="json")
        del invalid["data"]["email"]
        last = user_created()
        for body, key in (
            (created.to_json(), "user.created.v1"),
            (created.to_json(), "user.created.v1"),  # a redelivery
            (json.dumps(newer).encode(), "user.created.v1"),  # a future major, on the old key
            (json.dumps(invalid).encode(), "user.created.v1"),  # fails its JSON Schema
            (activated.to_json(), "user.activated.v1"),
            # Last, another user: once it is printed, so is every message before it (one queue).
            (last.to_json(), "user.created.v1"),
        ):
            await publish_raw(amqp_url, namespace.exchange, key, body)

        lines = []
        for _ in range(3):
            line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
            lines.append(line.decode().strip())
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        rest, errors = await asyncio.wait_for(process.communicate(), timeout=20)
        await delete_queue(amqp_url, queue_name)
    user_id = created.data.user_id
    assert lines == [
        f"UserCreated {user_id} ada@example.com",
        f"UserActivated {user_id}",
        f"UserCreated {last.data.user_id} ada@example.com",
    ]
    assert rest.decode().strip() == ""
    assert process.returncode == 0, errors.decode()
    (rejection,) = [line for line in errors.decode().splitlines() if line.startswith("rejected")]
    assert "must have required property 'email'" in rejection


async def delete_exchange(amqp_url: str, name: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.exchange_delete(name)
