"""The kit's pure parts: decoding and dispatch, settings validation, topology names."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from invitations.settings import InvitationsSettings
from onboarding_shared.contract import Envelope, InvitationRequested
from onboarding_shared.messaging.consumer import Delivery, EventRouter, PermanentFailure
from onboarding_shared.messaging.topology import ConsumerQueue
from onboarding_shared.settings import load_settings, redact_url
from tests.support.factories import invitation_requested

DELIVERY = Delivery(attempt=1, max_attempts=3, routing_key="invitation.requested.v1")


async def test_the_router_hands_a_valid_envelope_to_its_handler() -> None:
    seen: list[Envelope[Any]] = []

    async def handle(event: Envelope[InvitationRequested], _delivery: Delivery) -> None:
        seen.append(event)

    router = EventRouter()
    router.register(InvitationRequested, handle)
    event = invitation_requested()
    await router(event.to_json(), DELIVERY)
    assert seen[0].data == event.data


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe", "not an event envelope"),
        (b"[1, 2]", "not an event envelope"),
        (b'{"event_type": "InvitationRequested"}', "not an event envelope"),
        (
            json.dumps({"event_type": "UserActivated", "event_version": 1}).encode(),
            "no handler here for UserActivated v1 (known",
        ),
        (
            json.dumps({"event_type": "Nope", "event_version": 7}).encode(),
            "no handler here for Nope v7 (unknown)",
        ),
    ],
)
async def test_undecodable_or_unexpected_messages_are_permanent_failures(
    body: bytes, reason: str
) -> None:
    router = EventRouter()
    router.register(InvitationRequested, _never)
    with pytest.raises(PermanentFailure, match=re.escape(reason)):
        await router(body, DELIVERY)


async def test_validation_errors_name_fields_but_never_echo_values() -> None:
    wire = json.loads(invitation_requested().to_json())
    wire["data"]["join_url"] = ["secret-token-value"]
    router = EventRouter()
    router.register(InvitationRequested, _never)
    with pytest.raises(PermanentFailure) as failure:
        await router(json.dumps(wire).encode(), DELIVERY)
    assert "data.join_url" in str(failure.value)
    assert "secret-token-value" not in str(failure.value)


async def _never(_event: Envelope[Any], _delivery: Delivery) -> None:
    raise AssertionError("must not be called")


def test_retry_and_parking_queues_are_named_after_the_work_queue() -> None:
    queue = ConsumerQueue(name="mailer.invitations", bindings=(), retry_delays=(1.0, 5.0, 0.5))
    assert queue.parking_queue == "mailer.invitations.parked"
    assert [queue.retry_queue(n) for n in (1, 2, 3)] == [
        "mailer.invitations.retry.1s",
        "mailer.invitations.retry.5s",
        "mailer.invitations.retry.0.5s",
    ]
    assert queue.max_attempts == 4
    assert queue.dead_letter_exchange == "onboarding.events.dlx"


def test_an_invalid_setting_stops_the_service_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AMQP_URL", "http://wrong")
    monkeypatch.setenv("INVITATIONS_DATABASE_URL", "mysql://x")
    monkeypatch.setenv("PREFETCH", "0")
    with pytest.raises(SystemExit) as stopped:
        load_settings(InvitationsSettings)
    assert stopped.value.code == 2
    errors = capsys.readouterr().err
    assert "invalid setting AMQP_URL" in errors
    assert "invalid setting INVITATIONS_DATABASE_URL" in errors
    assert "invalid setting PREFETCH" in errors


def test_passwords_are_hidden_in_urls_fit_for_logs() -> None:
    assert redact_url("amqp://guest:s3cret@broker:5672/") == "amqp://guest:***@broker:5672/"
    assert redact_url("amqp://broker/") == "amqp://broker/"
