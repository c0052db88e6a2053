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


async def test_a_transient_smtp_failure_is_retried_and_the_email_sent_once(
    settings: MailerSettings,
    amqp_url: str,
    namespace: Namespace,
    smtp_server: SmtpServer,
    probe: EventProbe,
) -> None:
    smtp_server.handler.scripted_replies.append("451 4.3.0 try again later")
    async with in_process(create_app, settings):
        await publish(amqp_url, namespace, invitation_requested("retry@example.com").to_json())
        sent = await eventually(lambda: probe.events("email.sent.v1"))

    assert [m["To"] for m in smtp_server.messages] == ["retry@example.com"]
    assert sent[0]["data"]["attempts"] == 2
    assert handled(namespace, "retried") == 1


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
