"""The mailer against the real broker, PostgreSQL and SMTP server: exactly-once sending of
duplicates, parking of bad messages, retries of transient failures."""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY

from mailer.bootstrap import MIGRATIONS, create_app
from mailer.entrypoints.subscribers import INVITATIONS_QUEUE
from mailer.settings import MailerSettings
from tests.support.auth import verifier_settings
from tests.support.broker import EventProbe, Namespace, drain, eventually, publish_raw
from tests.support.databases import DatabaseFactory
from tests.support.factories import invitation_requested, service_settings
from tests.support.services import in_process
from tests.support.smtp import SmtpServer
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

ROUTING_KEY = "invitation.requested.v2"


@pytest.fixture
async def settings(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace, smtp_server: SmtpServer
) -> MailerSettings:
    database_url = await databases.create_migrated("mailer", MIGRATIONS)
    return MailerSettings(
        **service_settings(namespace, amqp_url, database_url),
        **verifier_settings(),
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_tls="none",
        smtp_from="Acme <team@acme.test>",
    )


def handled(namespace: Namespace, outcome: str) -> float:
    labels = {"queue": namespace.queue(INVITATIONS_QUEUE), "outcome": outcome}
    return REGISTRY.get_sample_value("onboarding_messages_total", labels) or 0.0


async def publish(
    amqp_url: str, namespace: Namespace, body: bytes, message_id: str | None = None
) -> None:
    await publish_raw(
        amqp_url, f"{namespace.exchange}.mail", ROUTING_KEY, body, message_id=message_id
    )


async def test_a_duplicated_invitation_sends_exactly_one_email(
    settings: MailerSettings,
    amqp_url: str,
    namespace: Namespace,
    smtp_server: SmtpServer,
    probe: EventProbe,
) -> None:
    event = invitation_requested("dup@example.com")
    async with in_process(create_app, settings):
        for _ in range(2):
            await publish(amqp_url, namespace, event.to_json(), message_id=str(event.event_id))
        await eventually(lambda: handled(namespace, "handled") == 2)

    assert [m["To"] for m in smtp_server.messages] == ["dup@example.com"]
    sent = probe.events("email.sent.v1")
    assert len(sent) == 1
    assert sent[0]["data"]["reference_id"] == str(event.data.invitation_id)
    assert sent[0]["correlation_id"] == event.correlation_id


async def test_an_unparseable_message_is_parked_with_its_reason_and_consumption_goes_on(
    settings: MailerSettings, amqp_url: str, namespace: Namespace, smtp_server: SmtpServer
) -> None:
    missing_email = json.loads(invitation_requested().to_json())
    del missing_email["data"]["email"]
    async with in_process(create_app, settings):
        await publish(amqp_url, namespace, b"{this is not json")
        await publish(amqp_url, namespace, json.dumps(missing_email).encode())
        await publish(amqp_url, namespace, invitation_requested("after@example.com").to_json())
        await eventually(lambda: len(smtp_server.messages) == 1)
        await eventually(lambda: handled(namespace, "parked") == 2)

    parked = await drain(amqp_url, namespace.queue(INVITATIONS_QUEUE) + ".parked")
    reasons = sorted(str(m.headers["x-parked-reason"]) for m in parked)
    assert reasons == [
        "invalid message: data.email: Field required",
        "not an event envelope: JSONDecodeError",
    ]
    assert all(m.headers["x-original-routing-key"] == ROUTING_KEY for m in parked)
    assert [m["To"] for m in smtp_server.messages] == ["after@example.com"]


async def test_a_deferred_email_is_announced_held_without_spending_attempts_then_sent_once(
    settings: MailerSettings,
    amqp_url: str,
    namespace: Namespace,
    smtp_server: SmtpServer,
    probe: EventProbe,
) -> None:
    # More deferrals than the queue has attempts: a 4xx is the server's state, not a fault.
    smtp_server.handler.scripted_replies.extend(["451 4.3.0 try again later"] * 4)
    async with in_process(create_app, settings):
        await publish(amqp_url, namespace, invitation_requested("retry@example.com").to_json())
        sent = await eventually(lambda: probe.events("email.sent.v1"), timeout=30)

    assert [m["To"] for m in smtp_server.messages] == ["retry@example.com"]
    assert sent[0]["data"]["attempts"] == 5
    deferred = probe.events("email.deferred.v1")
    assert [e["data"]["attempts"] for e in deferred] == [1, 2, 4]  # then thinned out
    assert "451" in deferred[0]["data"]["reason"]
    assert handled(namespace, "held") == 4 and handled(namespace, "retried") == 0
    assert probe.events("email.failed.v1") == []
    assert await drain(amqp_url, namespace.queue(INVITATIONS_QUEUE) + ".parked") == []


async def test_while_the_smtp_server_is_unreachable_the_email_stays_in_hand_then_goes_out(
    settings: MailerSettings,
    amqp_url: str,
    namespace: Namespace,
    smtp_server: SmtpServer,
    probe: EventProbe,
) -> None:
    proxy = await TcpProxy("127.0.0.1", smtp_server.port).start()
    await proxy.cut()
    async with in_process(create_app, settings.model_copy(update={"smtp_port": proxy.port})):
        await publish(amqp_url, namespace, invitation_requested("later@example.com").to_json())
        [deferred] = await eventually(lambda: probe.events("email.deferred.v1"))
        assert "unavailable" not in deferred["data"]["reason"]  # the SMTP error itself
        await eventually(lambda: waiting(namespace) == 1)
        # Tried in hand more often than the queue has attempts (3), over longer than all its
        # retry delays together: had it spent them, it would be parked by now.
        await eventually(lambda: deferred_attempts(probe) >= 4, timeout=15)
        await proxy.restore()
        sent = await eventually(lambda: probe.events("email.sent.v1"), timeout=15)
        await eventually(lambda: waiting(namespace) == 0)

    assert [m["To"] for m in smtp_server.messages] == ["later@example.com"]
    assert sent[0]["data"]["attempts"] >= 3
    # Kept in hand: neither a wait queue nor an attempt of the message's was spent.
    assert handled(namespace, "held") == 0 and handled(namespace, "retried") == 0
    assert handled(namespace, "handled") == 1
    assert probe.events("email.failed.v1") == []


def deferred_attempts(probe: EventProbe) -> int:
    """The most attempts an announced deferral counted (announcements thin out: 1, 2, 4...)."""
    return max((int(e["data"]["attempts"]) for e in probe.events("email.deferred.v1")), default=0)


def waiting(namespace: Namespace) -> float:
    labels = {"queue": namespace.queue(INVITATIONS_QUEUE)}
    return REGISTRY.get_sample_value("onboarding_messages_waiting_for_dependency", labels) or 0.0


async def test_a_permanent_smtp_failure_is_reported_not_retried(
    settings: MailerSettings,
    amqp_url: str,
    namespace: Namespace,
    smtp_server: SmtpServer,
    probe: EventProbe,
) -> None:
    smtp_server.handler.scripted_replies.append("550 5.1.1 no such mailbox")
    async with in_process(create_app, settings):
        await publish(amqp_url, namespace, invitation_requested("gone@example.com").to_json())
        failed = await eventually(lambda: probe.events("email.failed.v1"))

    data = failed[0]["data"]
    assert data["permanent"] is True
    assert data["attempts"] == 1
    assert "550" in data["reason"]
    assert smtp_server.messages == []
    assert handled(namespace, "retried") == 0
