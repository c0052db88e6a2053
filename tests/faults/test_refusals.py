"""What no retry can fix: addresses the SMTP server refuses for good (550), which must end
`failed` and nothing else; and poison messages, which must be parked and nothing else."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.faults.harness import BURST, Baseline, Recovery, conclude, run_burst, verdict
from tests.support.broker import publish_raw
from tests.support.faults_report import Expectations
from tests.support.faults_system import IN_FLIGHT_WINDOW, FaultLab, addresses

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

REFUSED_EVERY = 20  # one address in 20 does not exist


async def test_single_addresses_refused_with_550_end_failed_and_only_they(
    lab: FaultLab, baseline: Baseline
) -> None:
    everyone = addresses(lab.tag, BURST)
    unknown = frozenset(everyone[::REFUSED_EVERY])
    lab.smtp.handler.unknown_recipients = unknown
    started = time.monotonic()
    invited = await lab.invite_burst(everyone)
    figures = await conclude(
        lab,
        scenario="550 for single addresses",
        fault=f"RCPT TO refused with 550 for {len(unknown)} of the addresses",
        invited=invited,
        # No outage to recover from: the drain counts from the first request, as the baseline.
        recovery=Recovery(at=started),
        limit=baseline.limit,
        expected=Expectations(permanent=unknown),
        started=started,
    )
    verdict(figures, lab)


def envelope(event_type: str, version: int, data: dict[str, object]) -> bytes:
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "event_version": version,
            "occurred_at": datetime.now(UTC).isoformat(),
            "producer": "invitations",
            "correlation_id": str(uuid.uuid4()),
            "data": data,
        }
    ).encode()


def invitation_data(**changes: object) -> dict[str, object]:
    return {
        "invitation_id": str(uuid.uuid4()),
        "email": "nobody@example.com",
        "workspace_name": "Acme Chat",
        "join_url": "http://chat.acme.test/join/x",
        "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        **changes,
    }


MAIL_EXCHANGE = "onboarding.events.mail"
EVENTS_EXCHANGE = "onboarding.events"
# (exchange, routing key, body): each must end in its consumer's parking queue.
POISON = [
    (MAIL_EXCHANGE, "invitation.requested.v2", b"\xff\xfe not json at all"),
    (MAIL_EXCHANGE, "invitation.requested.v2", b'{"hello": "not an envelope"}'),
    (MAIL_EXCHANGE, "invitation.requested.v2", b"[" * 100_000),  # too deep to parse
    (MAIL_EXCHANGE, "invitation.requested.v2", envelope("InvitationRequested", 99, {})),
    (
        MAIL_EXCHANGE,
        "invitation.requested.v2",
        envelope("InvitationRequested", 2, invitation_data(email="not an address")),
    ),
    (EVENTS_EXCHANGE, "email.sent.v1", b"\x00\x01\x02"),
    (EVENTS_EXCHANGE, "email.sent.v1", envelope("EmailSent", 1, {"email_id": "x"})),
]


async def test_poison_messages_are_parked_and_the_burst_goes_through(
    lab: FaultLab, baseline: Baseline
) -> None:
    async def inject(lab: FaultLab) -> Recovery:
        for exchange, routing_key, body in POISON:
            await publish_raw(lab.amqp_url, exchange, routing_key, body)
        return Recovery(at=time.monotonic(), notes=[f"{len(POISON)} poison messages published"])

    figures = await run_burst(
        lab,
        scenario="poison messages",
        fault=f"{len(POISON)} malformed or invalid messages published among the burst",
        inject=inject,
        baseline=baseline,
        expected=Expectations(parked=len(POISON), duplicates=IN_FLIGHT_WINDOW),
    )
    verdict(figures, lab)
