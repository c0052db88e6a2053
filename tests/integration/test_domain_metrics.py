"""The domain metrics of the invitations, mailer and users services, on the real broker,
PostgreSQL and SMTP server: counted once committed, with a closed set of label values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY, generate_latest
from sqlalchemy import update

from invitations.adapters.orm import invitations as invitations_table
from invitations.bootstrap import MIGRATIONS as INVITATIONS_MIGRATIONS
from invitations.bootstrap import create_app as create_invitations
from invitations.settings import InvitationsSettings
from mailer.bootstrap import MIGRATIONS as MAILER_MIGRATIONS
from mailer.bootstrap import create_app as create_mailer
from mailer.settings import MailerSettings
from onboarding_shared.contract import UserActivated, new_event
from onboarding_shared.db import create_engine
from tests.support.auth import admin_headers, bearer, verifier_settings
from tests.support.broker import EventProbe, Namespace, eventually, publish_raw
from tests.support.databases import DatabaseFactory
from tests.support.factories import invitation_requested, service_settings
from tests.support.services import in_process
from tests.support.smtp import SmtpServer
from tests.support.users_service import admin_token, new_user, users_settings
from users.bootstrap import create_app as create_users
from users.entrypoints.subscribers import ACTIVATIONS_QUEUE

pytestmark = pytest.mark.integration

ROUTING_KEY = "invitation.requested.v2"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def invitation_results() -> dict[str, float]:
    results = ("queued", "invalid", "already_member", "already_invited", "duplicate_in_request")
    return {r: sample("onboarding_invitations_total", result=r) for r in results}


def emails(kind: str, outcome: str, reason: str) -> float:
    return sample("onboarding_emails_total", kind=kind, outcome=outcome, reason=reason)


async def test_invitation_results_are_counted_and_statuses_gauged(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace
) -> None:
    url = await databases.create_migrated("invitations", INVITATIONS_MIGRATIONS)
    settings = InvitationsSettings(
        **service_settings(namespace, amqp_url, url, metrics_refresh_seconds=0.2),
        **verifier_settings(),
    )
    before = invitation_results()
    async with in_process(create_invitations, settings) as client:
        first = await client.post(
            "/api/v1/invitations",
            json={"emails": "ada@example.com, ada@example.com, not-an-address, bob@example.com"},
            headers=admin_headers(),
        )
        assert first.status_code == 202, first.text
        again = await client.post(
            "/api/v1/invitations", json={"emails": ["bob@example.com"]}, headers=admin_headers()
        )
        assert again.status_code == 202, again.text
        bob = first.json()["results"][-1]["invitation_id"]
        revoked = await client.delete(f"/api/v1/invitations/{bob}", headers=admin_headers())
        assert revoked.status_code == 200, revoked.text
        await expire_all_pending(url)

        def gauge() -> dict[str, float]:
            statuses = ("pending", "retrying", "sent", "failed", "accepted", "revoked", "expired")
            return {s: sample("onboarding_invitations", status=s) for s in statuses}

        expected = {
            "pending": 0,
            "retrying": 0,
            "sent": 0,
            "failed": 0,
            "accepted": 0,
            "revoked": 1,
            "expired": 1,
        }
        assert await eventually(lambda: gauge() == expected, timeout=10)

    after = invitation_results()
    assert {r: after[r] - before[r] for r in after} == {
        "queued": 2,
        "invalid": 1,
        "already_member": 0,
        "already_invited": 1,
        "duplicate_in_request": 1,
    }


async def expire_all_pending(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(
            update(invitations_table)
            .where(invitations_table.c.status == "pending")
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    await engine.dispose()


async def test_emails_are_counted_by_kind_outcome_and_a_closed_set_of_reasons(
    databases: DatabaseFactory,
    amqp_url: str,
    namespace: Namespace,
    smtp_server: SmtpServer,
    probe: EventProbe,
) -> None:
    url = await databases.create_migrated("mailer", MAILER_MIGRATIONS)
    settings = MailerSettings(
        **service_settings(namespace, amqp_url, url),
        **verifier_settings(),
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_tls="none",
    )
    sent, refused = emails("invitation", "sent", ""), emails("invitation", "failed", "permanent")
    gone, ada = invitation_requested("gone@example.com"), invitation_requested("ada@example.com")
    smtp_server.handler.scripted_replies.append("550 5.1.1 <gone@example.com>: no such mailbox")
    async with in_process(create_mailer, settings):
        # One at a time: the scripted refusal goes to whichever email comes first.
        await publish_raw(amqp_url, f"{namespace.exchange}.mail", ROUTING_KEY, gone.to_json())
        await eventually(lambda: probe.events("email.failed.v1"), timeout=20)
        await publish_raw(amqp_url, f"{namespace.exchange}.mail", ROUTING_KEY, ada.to_json())
        await eventually(lambda: emails("invitation", "sent", "") == sent + 1, timeout=20)

    assert [str(m["To"]) for m in smtp_server.messages] == ["ada@example.com"]
    assert emails("invitation", "failed", "permanent") == refused + 1
    assert "no such mailbox" not in generate_latest(REGISTRY).decode()


async def test_users_created_and_activated_are_counted_with_the_time_to_activate(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace
) -> None:
    settings = await users_settings(databases, amqp_url, namespace)
    created, activated = (
        sample("onboarding_users_created_total"),
        sample("onboarding_users_activated_total"),
    )
    observed = sample("onboarding_activation_seconds_count")
    within_an_hour = sample("onboarding_activation_seconds_bucket", le="3600.0")
    async with in_process(create_users, settings) as client:
        headers = bearer(await admin_token(client))
        response = await client.post("/api/v1/users", json=new_user(), headers=headers)
        assert response.status_code == 201, response.text
        user = response.json()
        assert sample("onboarding_users_created_total") == created + 2  # the first admin too

        first_login = datetime.fromisoformat(user["created_at"]) + timedelta(minutes=30)
        activation = new_event(
            UserActivated(user_id=uuid.UUID(user["id"]), activated_at=first_login),
            producer="auth-listener",
        )
        for _ in range(2):  # a redelivery activates nobody twice
            await publish_raw(
                amqp_url,
                namespace.exchange,
                "user.activated.v1",
                activation.to_json(),
                message_id=str(activation.event_id),
            )
        await eventually(lambda: sample("onboarding_users_activated_total") == activated + 1)
        await eventually(
            lambda: (
                sample(
                    "onboarding_messages_total",
                    queue=namespace.queue(ACTIVATIONS_QUEUE),
                    outcome="handled",
                )
                >= 2
            )
        )

    assert sample("onboarding_users_activated_total") == activated + 1
    assert sample("onboarding_activation_seconds_count") == observed + 1
    assert sample("onboarding_activation_seconds_bucket", le="3600.0") == within_an_hour + 1
