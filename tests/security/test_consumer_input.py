"""What a hostile or broken message does to a consumer: input no retry can fix is parked at
once, its reason names no value from it (no SQL parameters, no body), a message from the wrong
producer is parked whatever its body, and a malformed heartbeat is counted and dropped without
a traceback."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy.ext.asyncio import create_async_engine

from onboarding_shared.contract import Envelope, MailerStatus, new_event
from onboarding_shared.messaging.broadcast import BROADCASTS_DROPPED, LatestBroadcast
from onboarding_shared.messaging.consumer import (
    ATTEMPT_HEADER,
    REASON_HEADER,
    Delivery,
    ReliableConsumer,
)
from onboarding_shared.messaging.topology import Binding, ConsumerQueue
from onboarding_shared.messaging.trust import BusIdentity
from tests.support.factories import invitation_requested
from tests.support.fake_rabbit import FakeBroker, FakeRabbitMessage, RawMessage

SECRET_EMAIL = "ceo@victim.example"


class Row(BaseModel):
    count: int


async def conflicting_insert(_body: bytes, _delivery: Delivery) -> None:
    """A unique conflict, as a handler meets it: the database quotes the values it refused."""
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("email", String))
    async with engine.begin() as connection:
        await connection.run_sync(table.metadata.create_all)
        await connection.execute(insert(table).values(id=1, email=SECRET_EMAIL))
        await connection.execute(insert(table).values(id=1, email=SECRET_EMAIL))


async def invalid_data(_body: bytes, _delivery: Delivery) -> None:
    Row.model_validate({"count": SECRET_EMAIL})


async def nested_too_deep(_body: bytes, _delivery: Delivery) -> None:
    json.loads("[" * 100_000 + "]" * 100_000)


def consumer(handler: object, broker: FakeBroker) -> ReliableConsumer:
    queue = ConsumerQueue("mailer.invitations", (Binding("invitation.requested.v2"),))
    subject = ReliableConsumer(queue, handler)  # type: ignore[arg-type]
    subject._broker = broker  # type: ignore[assignment]
    subject._identity = BusIdentity(service="mailer", broker_user="guest")
    return subject


def parked_reasons(broker: FakeBroker) -> list[str]:
    return [
        options["headers"][REASON_HEADER]
        for options in broker.published
        if options.get("headers", {}).get(REASON_HEADER)
    ]


@pytest.mark.parametrize(
    "handler", [conflicting_insert, invalid_data, nested_too_deep], ids=lambda h: h.__name__
)
async def test_input_no_retry_can_fix_is_parked_at_once_without_its_values(
    handler: object,
) -> None:
    broker = FakeBroker()
    event = invitation_requested(email=SECRET_EMAIL)
    message = FakeRabbitMessage(event.to_json(), str(event.event_id), event.correlation_id)

    await consumer(handler, broker).process(message)  # type: ignore[arg-type]

    (reason,) = parked_reasons(broker)
    assert reason.startswith("cannot be handled: ")
    assert SECRET_EMAIL not in reason and "parameters" not in reason.lower()
    assert not [o for o in broker.published if o.get("headers", {}).get(ATTEMPT_HEADER)]
    assert message.settled == ["ack"]


async def test_a_message_from_the_wrong_producer_is_parked_whatever_its_body() -> None:
    broker = FakeBroker()
    for body in (b"not json at all", invitation_requested().to_json()):
        message = FakeRabbitMessage(
            body, str(uuid.uuid4()), "c", raw_message=RawMessage(user_id="someone-else")
        )
        handled: list[bytes] = []

        async def record(body: bytes, _delivery: Delivery, seen: list[bytes] = handled) -> None:
            seen.append(body)

        await consumer(record, broker).process(message)  # type: ignore[arg-type]
        assert handled == []
    assert parked_reasons(broker) == ["untrusted producer", "untrusted producer"]


async def test_forged_retry_headers_count_for_nothing() -> None:
    """Someone else's message claiming to be on its last attempt, from an open key: its
    attempt and original key are the broker's facts, not its own claims."""
    broker = FakeBroker()
    message = FakeRabbitMessage(
        b"{}",
        "m",
        "c",
        headers={ATTEMPT_HEADER: 99, "x-original-routing-key": "user.logged_in.v1"},
        raw_message=RawMessage(user_id="someone-else"),
    )
    seen: list[Delivery] = []

    async def record(_body: bytes, delivery: Delivery) -> None:
        seen.append(delivery)

    await consumer(record, broker).process(message)  # type: ignore[arg-type]
    assert seen == []  # still judged on its real key, invitation.requested.v2: untrusted
    assert parked_reasons(broker) == ["untrusted producer"]


def status(**overrides: object) -> Envelope[MailerStatus]:
    return new_event(
        MailerStatus(
            smtp_configured=True, interval_seconds=10, reported_at=datetime.now(UTC)
        ).model_copy(update=overrides),
        producer="mailer",
    )


class FakeSubscribingBroker:
    def __init__(self) -> None:
        self.handler: object = None

    def subscriber(self, *_args: object, **_kwargs: object) -> object:
        def register(handler: object) -> object:
            self.handler = handler
            return handler

        return register


@pytest.mark.parametrize(
    ("body", "user_id", "reason"),
    [
        (
            b'{"event_type": "MailerStatus", "data": {"smtp_configured": "nope"}}',
            "guest",
            "invalid",
        ),
        (b"[" * 50_000, "guest", "invalid"),
        (status().to_json(), "someone-else", "untrusted producer"),
    ],
    ids=["invalid", "too-deep", "untrusted"],
)
async def test_a_bad_heartbeat_is_counted_and_dropped_without_a_traceback(
    body: bytes, user_id: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = _heartbeats()
    broker = FakeSubscribingBroker()
    watcher.subscribe(broker, BusIdentity(service="users", broker_user="guest"))  # type: ignore[arg-type]
    dropped = BROADCASTS_DROPPED.labels(event_type="MailerStatus", reason=reason)
    before = dropped._value.get()

    with caplog.at_level(logging.WARNING):
        await broker.handler(
            FakeRabbitMessage(body, "m", "c", raw_message=RawMessage(user_id=user_id))
        )  # type: ignore[operator]

    assert (
        BROADCASTS_DROPPED.labels(event_type="MailerStatus", reason=reason)._value.get()
        == before + 1
    )
    assert watcher.latest is None
    assert all(record.exc_info is None for record in caplog.records)


async def test_a_good_heartbeat_from_the_mailer_is_remembered() -> None:
    watcher = _heartbeats()
    broker = FakeSubscribingBroker()
    watcher.subscribe(broker, BusIdentity(service="users", broker_user="guest"))  # type: ignore[arg-type]
    await broker.handler(FakeRabbitMessage(status().to_json(), "m", "c"))  # type: ignore[operator]
    assert watcher.latest is not None


def _heartbeats() -> LatestBroadcast[MailerStatus]:
    return LatestBroadcast(
        MailerStatus, "onboarding.events", service="users", order=lambda s: s.reported_at
    )
