"""Log lines as operators see them: one JSON object each, with event_id and correlation_id where
a message or request is in hand, and never a token, a password or a whole message body."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import insert

from onboarding_shared.contract import Envelope, InvitationRequested
from onboarding_shared.db import create_engine, new_metadata, session_factory
from onboarding_shared.messaging.consumer import Delivery, ReliableConsumer
from onboarding_shared.messaging.outbox import OutboxRelay, define_outbox_table, outbox_row
from onboarding_shared.messaging.publisher import OutgoingMessage
from onboarding_shared.messaging.topology import Binding, ConsumerQueue
from onboarding_shared.messaging.trust import VERIFIED_SENDER_HEADER, BusIdentity
from onboarding_shared.observability import configure_logging
from onboarding_shared.runtime import CORRELATION_HEADER, CorrelationMiddleware
from tests.support.auth import mint_token
from tests.support.factories import invitation_requested
from tests.support.fake_rabbit import FakeBroker, FakeRabbitMessage

JWT = mint_token()
JOIN_TOKEN = "Zq8XkP3mN1rT5vW7yA9bC2dE4fG6hJ8kL0mN2pQ4rS6"
PASSWORD = "Correct-Horse-Battery-9"
SECRETS = (JWT, JOIN_TOKEN, PASSWORD)


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """The services' logging set-up, writing into a buffer; the test run's own set-up after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("INFO", service="tests", json_lines=True)
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    yield buffer
    root.handlers, level = saved
    root.setLevel(level)
    structlog.reset_defaults()


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def assert_no_secret(buffer: io.StringIO, *bodies: Envelope[Any]) -> None:
    text = buffer.getvalue()
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, text
    # The invitation id is only ever in the body: seeing it means the body was logged.
    assert not [b for b in bodies if str(b.data.invitation_id) in text], "a body was logged"


class Login(BaseModel):
    password: str
    age: int


async def failing_handler(body: bytes, delivery: Delivery) -> None:
    # Errors that echo input: a token in a message, and pydantic's input_value.
    if delivery.attempt == 1:
        raise ValueError(f"upstream refused Bearer {JWT} for /join/{JOIN_TOKEN}")
    Login.model_validate({"password": PASSWORD, "age": "old"})


def consumer(broker: FakeBroker) -> ReliableConsumer:
    queue = ConsumerQueue("mailer.invitations", (Binding("invitation.requested.v2"),))
    subject = ReliableConsumer(queue, failing_handler)
    subject._broker = broker  # type: ignore[assignment]
    subject._identity = BusIdentity(service="mailer", broker_user="guest")
    return subject


async def test_consumer_lines_carry_the_event_and_correlation_ids_and_no_secret(
    log_output: io.StringIO,
) -> None:
    event = invitation_requested(join_url=f"https://chat.acme.test/join/{JOIN_TOKEN}")
    broker = FakeBroker()
    subject = consumer(broker)
    for attempt in (1, 4):  # a retry, then the last attempt, which parks the message
        message = FakeRabbitMessage(
            body=event.to_json(),
            message_id=str(event.event_id),
            correlation_id=event.correlation_id,
            headers={"x-attempt": attempt, VERIFIED_SENDER_HEADER: "guest"},
        )
        await subject.process(message)  # type: ignore[arg-type]
        assert message.settled == ["ack"]

    records = lines(log_output)
    # The ValidationError is the input's fault: parked at once, not retried.
    assert {r["event"] for r in records} >= {"message failed; retrying later", "message parked"}
    for record in records:
        assert record["event_id"] == str(event.event_id)
        assert record["correlation_id"] == event.correlation_id
        assert record["service"] == "tests"
    assert_no_secret(log_output, event)
    forwarded_headers = json.dumps([options.get("headers") for options in broker.published])
    assert JWT not in forwarded_headers and PASSWORD not in forwarded_headers
    # The rejection announced to publishers names the event, not its content.
    [rejected] = [
        json.loads(o["body"])
        for o in broker.published
        if o.get("routing_key") == ("event.rejected.v1")
    ]
    assert rejected["data"]["event_id"] == str(event.event_id)
    assert rejected["data"]["producer"] == "guest"
    assert JOIN_TOKEN not in json.dumps(rejected) and PASSWORD not in json.dumps(rejected)


class RefusingPublisher:
    async def publish(self, message: OutgoingMessage) -> None:
        logging.getLogger("faststream").warning("publish refused by the broker")
        raise ConnectionError(f"amqp://guest:{PASSWORD}@rabbit:5672/ closed")


async def test_relay_lines_carry_the_event_and_correlation_ids_and_no_secret(
    log_output: io.StringIO,
) -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    metadata = new_metadata()
    outbox = define_outbox_table(metadata)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    sessions = session_factory(engine)
    event = invitation_requested(join_url=f"https://chat.acme.test/join/{JOIN_TOKEN}")
    async with sessions() as session, session.begin():
        await session.execute(insert(outbox), [outbox_row(event)])

    relay = OutboxRelay(sessions, outbox, RefusingPublisher())
    assert await relay.relay_once() == 0
    await engine.dispose()

    records = lines(log_output)
    assert [r["event"] for r in records] == [
        "publish refused by the broker",
        "outbox publish failed",
    ]
    for record in records:
        assert record["event_id"] == str(event.event_id)
        assert record["correlation_id"] == event.correlation_id
    assert "***@rabbit" in records[1]["error"]
    assert_no_secret(log_output, event)


async def test_request_lines_carry_the_correlation_id(log_output: io.StringIO) -> None:
    app = FastAPI()
    app.add_middleware(CorrelationMiddleware)

    @app.get("/work")
    async def work() -> dict[str, str]:
        logging.getLogger("tests.http").info("doing the work")
        return {}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        response = await client.get("/work", headers={CORRELATION_HEADER: "req-42"})
    assert response.headers[CORRELATION_HEADER] == "req-42"
    (record,) = [r for r in lines(log_output) if r["logger"] == "tests.http"]
    assert record["event"] == "doing the work"
    assert record["correlation_id"] == "req-42"


def test_secrets_given_by_callers_or_libraries_are_redacted(log_output: io.StringIO) -> None:
    access = logging.getLogger("uvicorn.access")
    access.info(
        '%s - "%s %s HTTP/%s" %d', "10.0.0.1:5000", "GET", f"/join/{JOIN_TOKEN}", "1.1", 200
    )
    access.info(
        '%s - "%s %s HTTP/%s" %d', "10.0.0.1:5000", "GET", f"/x?token={JOIN_TOKEN}", "1.1", 200
    )
    app_log = logging.getLogger("users.service_layer")
    app_log.info("account created", extra={"password": PASSWORD, "access_token": JWT})
    app_log.info("request", extra={"headers": {"Authorization": f"Bearer {JWT}"}})
    event = invitation_requested()
    app_log.info("handling", extra={"body": event.to_json().decode()})
    try:
        InvitationRequested.model_validate({"email": PASSWORD})
    except ValueError:
        app_log.exception("could not read an invitation")
    structlog.get_logger("native").info("login", password=PASSWORD, user_id=str(uuid.uuid4()))

    records = lines(log_output)
    assert len(records) == 7
    assert records[0]["event"].endswith('"GET /join/[redacted] HTTP/1.1" 200')
    assert records[2]["password"] == "[redacted]"
    assert "input_value=[redacted]" in records[5]["exception"]
    assert_no_secret(log_output, event)
