"""The invitations API with the mailer, on the real broker, PostgreSQL and SMTP server:
permissions, per-address results, limits, the SMTP warning and held invitations, delivery
outcomes, resend and revoke."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from invitations.bootstrap import MIGRATIONS as INVITATIONS_MIGRATIONS
from invitations.bootstrap import create_app as create_invitations
from invitations.domain.model import InvitationStatus
from invitations.entrypoints.subscribers import EMAIL_OUTCOMES_QUEUE, MEMBERS_QUEUE
from invitations.service_layer import services
from invitations.settings import InvitationsSettings
from mailer.bootstrap import MIGRATIONS as MAILER_MIGRATIONS
from mailer.bootstrap import create_app as create_mailer
from mailer.settings import MailerSettings
from onboarding_shared.contract import (
    EmailDeferred,
    EmailKind,
    EmailSent,
    UserCreated,
    new_event,
)
from tests.support.auth import admin_headers, bearer, mint_token, verifier_settings
from tests.support.broker import EventProbe, Namespace, eventually, publish_raw
from tests.support.databases import DatabaseFactory
from tests.support.factories import service_settings
from tests.support.services import in_process
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.integration

API = "/api/v1/invitations"
JOIN_TOKEN = re.compile(r"/join/([A-Za-z0-9_-]{43,})")
ADMIN = admin_headers()


@pytest.fixture
async def invitations_settings(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace
) -> InvitationsSettings:
    url = await databases.create_migrated("invitations", INVITATIONS_MIGRATIONS)
    return InvitationsSettings(
        **service_settings(namespace, amqp_url, url),
        **verifier_settings(),
        public_url="https://chat.acme.test",
        workspace_name="Acme",
        max_addresses_per_request=5,
        max_invitations_per_day=8,
    )


MailerFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def mailer(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace, smtp_server: SmtpServer
) -> MailerFactory:
    """Starts the mailer in this process, with SMTP set up unless told otherwise."""
    url = await databases.create_migrated("mailer", MAILER_MIGRATIONS)

    def start(*, smtp: bool = True) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        smtp_settings: dict[str, Any] = (
            {"smtp_host": "127.0.0.1", "smtp_port": smtp_server.port, "smtp_tls": "none"}
            if smtp
            else {}
        )
        settings = MailerSettings(
            **service_settings(namespace, amqp_url, url),
            **verifier_settings(),
            **smtp_settings,
            smtp_from="Acme <team@acme.test>",
            status_interval_seconds=0.3,
        )
        return in_process(create_mailer, settings)

    return start


@pytest.fixture
async def api(invitations_settings: InvitationsSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(create_invitations, invitations_settings) as client:
        yield client


async def invite(api: httpx.AsyncClient, emails: str | list[str], **extra: Any) -> httpx.Response:
    return await api.post(API, json={"emails": emails, **extra}, headers=ADMIN)


async def statuses(api: httpx.AsyncClient) -> dict[str, str]:
    items = (await api.get(API, headers=ADMIN)).json()["items"]
    return {item["email"]: item["status"] for item in items}


async def test_only_admins_may_invite_or_list(api: httpx.AsyncClient) -> None:
    body = {"emails": "a@example.com"}
    assert (await api.post(API, json=body)).status_code == 401
    assert (await api.post(API, json=body, headers=bearer("not-a-token"))).status_code == 401
    assert (
        await api.post(API, json=body, headers=bearer(mint_token(roles=("user",))))
    ).status_code == 403
    assert (await api.get(API, headers=bearer(mint_token(roles=("user",))))).status_code == 403
    assert (await api.get(API)).status_code == 401


async def test_results_per_address_and_members_learned_from_user_created(
    api: httpx.AsyncClient, amqp_url: str, namespace: Namespace
) -> None:
    created = new_event(
        UserCreated(
            user_id=uuid.uuid4(),
            email="Grace@Example.com",
            username="grace",
            name="Grace",
            roles=["user"],
            status="pending",
            created_at=datetime.now(UTC),
        ),
        producer="users",
    )
    await publish_raw(amqp_url, namespace.exchange, "user.created.v1", created.to_json())
    await eventually(lambda: _members_handled(namespace) >= 1)

    first = await invite(api, "ada@example.com; Linus <linus@example.com>")
    assert first.status_code == 202
    response = await invite(
        api, "grace@example.com, ADA@example.com, broken@, new@example.com, NEW@example.com"
    )
    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == [
        "already_member",
        "already_invited",
        "invalid",
        "queued",
        "duplicate_in_request",
    ]
    assert results[1]["invitation_id"] == first.json()["results"][0]["invitation_id"]
    assert "@-sign" in results[2]["reason"] or "after the @" in results[2]["reason"]
    listing = (await api.get(API, params={"q": "EXAMPLE.COM"}, headers=ADMIN)).json()
    assert listing["total"] == 3


def _members_handled(namespace: Namespace) -> float:
    return _handled(namespace, MEMBERS_QUEUE)


def _handled(namespace: Namespace, queue: str) -> float:
    labels = {"queue": namespace.queue(queue), "outcome": "handled"}
    return REGISTRY.get_sample_value("onboarding_messages_total", labels) or 0.0


async def test_roles_on_invite_are_kept_listed_and_announced(
    api: httpx.AsyncClient, probe: EventProbe
) -> None:
    answer = await invite(api, "ada@example.com", roles=["user", "admin"])
    assert answer.status_code == 202, answer.text
    [item] = (await api.get(API, headers=ADMIN)).json()["items"]
    assert item["roles"] == ["admin", "user"]
    [issued] = await eventually(lambda: probe.events("invitation.issued.v1"))
    assert issued["data"]["roles"] == ["admin", "user"]

    for roles, problem in (([], "at least 1 item"), (["owner"], "'admin' or 'user'")):
        refused = await invite(api, "grace@example.com", roles=roles)
        assert refused.status_code == 422
        [error] = refused.json()["detail"]
        assert error["loc"][:2] == ["body", "roles"] and problem in error["msg"]
    assert len((await api.get(API, headers=ADMIN)).json()["items"]) == 1


async def test_limits_refuse_the_whole_request_and_create_nothing(api: httpx.AsyncClient) -> None:
    too_many = await invite(api, [f"p{n}@example.com" for n in range(6)])
    assert too_many.status_code == 413
    assert "limit is 5" in too_many.json()["detail"]

    assert (await invite(api, [f"q{n}@example.com" for n in range(5)])).status_code == 202
    over_day = await invite(api, [f"r{n}@example.com" for n in range(4)])
    assert over_day.status_code == 429
    assert 0 < int(over_day.headers["Retry-After"]) <= 86400
    assert (await api.get(API, headers=ADMIN)).json()["total"] == 5

    assert (await invite(api, "x@example.com", expires_in_hours=0)).status_code == 422
    assert (await invite(api, "x@example.com", message="x" * 1001)).status_code == 422
    assert (await invite(api, "x@example.com", message="bell \x07")).status_code == 422
    assert (await api.post(API, content=b"{not json", headers=ADMIN)).status_code == 422


async def test_the_admin_is_warned_while_emails_cannot_go_out_and_held_ones_go_out_later(
    api: httpx.AsyncClient, mailer: MailerFactory, smtp_server: SmtpServer
) -> None:
    unreachable = (await invite(api, "one@example.com")).json()
    assert unreachable["smtp_configured"] is None
    assert "cannot be reached" in unreachable["warning"]

    async with mailer(smtp=False):
        await eventually(lambda: _heard_from_mailer(api))
        unconfigured = (await invite(api, "two@example.com")).json()
        assert unconfigured["smtp_configured"] is False
        assert "SMTP is not configured" in unconfigured["warning"]
        assert "kept" in unconfigured["warning"]
    assert smtp_server.messages == []
    assert set((await statuses(api)).values()) == {"pending"}

    async with mailer(smtp=True):
        await eventually(lambda: len(smtp_server.messages) == 2)
        assert await eventually(lambda: _all_sent(api, 2))
        configured = (await invite(api, "three@example.com")).json()
        assert (configured["smtp_configured"], configured["warning"]) == (True, None)
        await eventually(lambda: len(smtp_server.messages) == 3)
    assert sorted(str(m["To"]) for m in smtp_server.messages) == [
        "one@example.com",
        "three@example.com",
        "two@example.com",
    ]


def _heard_from_mailer(api: httpx.AsyncClient) -> bool:
    snapshot = api.app.state.context.mailer_status.snapshot()  # type: ignore[attr-defined]
    return bool(snapshot.heard and snapshot.reachable)


async def _all_sent(api: httpx.AsyncClient, count: int) -> bool:
    sent = [s for s in (await statuses(api)).values() if s == "sent"]
    return len(sent) >= count


async def test_delivery_outcomes_reach_the_invitation(
    api: httpx.AsyncClient, mailer: MailerFactory, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.scripted_replies += ["451 4.3.0 busy, try later"]
    async with mailer():
        await invite(api, "flaky@example.com")
        assert await eventually(lambda: _all_sent(api, 1))
        smtp_server.handler.scripted_replies += ["550 5.1.1 no such mailbox"]
        await invite(api, "gone@example.com")

        async def failed() -> dict[str, Any] | None:
            items = (await api.get(API, params={"status": "failed"}, headers=ADMIN)).json()["items"]
            return items[0] if items else None

        gone = await eventually(failed)
    flaky = (await api.get(API, params={"status": "sent"}, headers=ADMIN)).json()["items"][0]
    assert (flaky["email"], flaky["attempts"]) == ("flaky@example.com", 2)
    assert gone["email"] == "gone@example.com"
    assert "550" in gone["last_error"]
    assert [str(m["To"]) for m in smtp_server.messages] == ["flaky@example.com"]


async def test_resend_keeps_the_link_and_revoke_closes_it(
    api: httpx.AsyncClient, mailer: MailerFactory, smtp_server: SmtpServer, probe: EventProbe
) -> None:
    async with mailer():
        invitation_id = (await invite(api, "ada@example.com", message="Hi <Ada>")).json()[
            "results"
        ][0]["invitation_id"]
        resent = await api.post(f"{API}/{invitation_id}/resend", headers=ADMIN)
        assert resent.status_code == 202
        assert resent.json()["invitation"]["sends"] == 2
        await eventually(lambda: len(smtp_server.messages) == 2)

        revoked = await api.delete(f"{API}/{invitation_id}", headers=ADMIN)
        assert (revoked.status_code, revoked.json()["status"]) == (200, "revoked")
        assert (await api.delete(f"{API}/{invitation_id}", headers=ADMIN)).status_code == 200
        refused = await api.post(f"{API}/{invitation_id}/resend", headers=ADMIN)
        assert refused.status_code == 409
        assert "revoked" in refused.json()["detail"]
        assert (await api.post(f"{API}/{uuid.uuid4()}/resend", headers=ADMIN)).status_code == 404
        await eventually(lambda: probe.events("invitation.revoked.v1"))

    links = [
        JOIN_TOKEN.search(str(m.get_body(preferencelist=("plain",)).get_content()))  # type: ignore[union-attr]
        for m in smtp_server.messages
    ]
    assert links[0] and links[1] and links[0].group(1) == links[1].group(1)
    html = str(smtp_server.messages[0].get_body(preferencelist=("html",)).get_content())  # type: ignore[union-attr]
    assert "Hi &lt;Ada&gt;" in html
    [revocation] = probe.events("invitation.revoked.v1")
    assert revocation["data"]["invitation_id"] == invitation_id
    issued = probe.events("invitation.issued.v1")
    assert len(issued) == 2, "the send and the resend"
    assert len({event["data"]["token_hash"] for event in issued}) == 1
    assert revocation["data"]["token_hash"] == issued[0]["data"]["token_hash"]


async def test_a_deferred_email_shows_the_invitation_retrying_until_it_is_sent(
    api: httpx.AsyncClient, amqp_url: str, namespace: Namespace
) -> None:
    """The mailer's outcomes as it publishes them, through the real consumer (no mailer here,
    so nothing else changes the invitation meanwhile)."""
    invitation_id = (await invite(api, "ada@example.com")).json()["results"][0]["invitation_id"]
    deferred_at = datetime.now(UTC)

    async def publish_deferral(reason: str, at: datetime, attempts: int) -> None:
        event = new_event(
            EmailDeferred(
                email_id=uuid.uuid4(),
                kind=EmailKind.INVITATION,
                reference_id=invitation_id,
                recipient="ada@example.com",
                attempts=attempts,
                reason=reason,
                next_attempt_at=at + timedelta(minutes=5),
                deliver_by=at + timedelta(days=7),
                deferred_at=at,
            ),
            producer="mailer",
        )
        await publish_raw(amqp_url, namespace.exchange, "email.deferred.v1", event.to_json())

    async def shown() -> dict[str, Any]:
        answer: dict[str, Any] = (await api.get(f"{API}/{invitation_id}", headers=ADMIN)).json()
        return answer

    await publish_deferral("421 4.7.0 try again later", deferred_at, 2)

    async def retrying() -> dict[str, Any] | None:
        invitation = await shown()
        return invitation if invitation["status"] == "retrying" else None

    invitation = await eventually(retrying)
    assert invitation["last_error"] == "421 4.7.0 try again later"
    assert invitation["attempts"] == 2
    next_attempt = datetime.fromisoformat(invitation["next_attempt_at"])
    assert next_attempt == deferred_at + timedelta(minutes=5)
    listed = (await api.get(API, params={"status": "retrying"}, headers=ADMIN)).json()
    assert [item["id"] for item in listed["items"]] == [invitation_id]
    assert (await api.get(API, params={"status": "pending"}, headers=ADMIN)).json()["total"] == 0
    # The gauge's grouped count: retrying now, expired once the link's time is up.
    context = api.app.state.context  # type: ignore[attr-defined]
    counts = await services.count_by_status(context.uow(), now=datetime.now(UTC))
    assert (counts[InvitationStatus.RETRYING], counts[InvitationStatus.PENDING]) == (1, 0)
    later = datetime.now(UTC) + timedelta(days=8)
    counts = await services.count_by_status(context.uow(), now=later)
    assert (counts[InvitationStatus.RETRYING], counts[InvitationStatus.EXPIRED]) == (0, 1)

    # An older deferral, delivered late, is handled but changes nothing.
    handled = _handled(namespace, EMAIL_OUTCOMES_QUEUE)
    await publish_deferral("connection refused", deferred_at - timedelta(minutes=1), 1)
    await eventually(lambda: _handled(namespace, EMAIL_OUTCOMES_QUEUE) > handled)
    assert (await shown())["last_error"] == "421 4.7.0 try again later"

    sent = new_event(
        EmailSent(
            email_id=uuid.uuid4(),
            kind=EmailKind.INVITATION,
            reference_id=invitation_id,
            recipient="ada@example.com",
            attempts=3,
            sent_at=datetime.now(UTC),
        ),
        producer="mailer",
    )
    await publish_raw(amqp_url, namespace.exchange, "email.sent.v1", sent.to_json())

    async def delivered() -> dict[str, Any] | None:
        invitation = await shown()
        return invitation if invitation["status"] == "sent" else None

    invitation = await eventually(delivered)
    assert (invitation["last_error"], invitation["next_attempt_at"], invitation["attempts"]) == (
        None,
        None,
        3,
    )


async def test_an_accepted_invitation_is_announced_and_its_inviter_emailed_unless_they_opted_out(
    api: httpx.AsyncClient,
    mailer: MailerFactory,
    smtp_server: SmtpServer,
    probe: EventProbe,
    amqp_url: str,
    namespace: Namespace,
) -> None:
    boss_id = uuid.uuid4()
    boss = bearer(mint_token(user_id=boss_id))
    await publish_user_created(amqp_url, namespace, boss_id, "Boss@Acme.test", "The Boss")
    await eventually(lambda: _members_handled(namespace) >= 1)

    assert (await api.get(f"{API}/settings/me", headers=boss)).json() == {
        "notify_on_acceptance": True
    }
    ada = await api.post(API, json={"emails": "ada@example.com"}, headers=boss)
    eve = await api.post(
        API, json={"emails": "eve@example.com", "notify_inviter": False}, headers=boss
    )
    ada_id, eve_id = (r.json()["results"][0]["invitation_id"] for r in (ada, eve))
    assert (await api.get(f"{API}/{eve_id}", headers=boss)).json()["notify_inviter"] is False
    # Only the inviter decides whether they are told.
    changed = await api.patch(f"{API}/{ada_id}", json={"notify_inviter": False}, headers=ADMIN)
    assert changed.status_code == 403

    async with mailer():
        for invitation_id, email, name in (
            (ada_id, "ada@example.com", "Ada Lovelace"),
            (eve_id, "eve@example.com", "Eve"),
        ):
            await publish_user_created(
                amqp_url, namespace, uuid.uuid4(), email, name, invitation_id=invitation_id
            )
        [notice] = await eventually(
            lambda: [m for m in smtp_server.messages if m["To"] == "Boss@Acme.test"]
        )
        accepted = await eventually(
            lambda: (
                len(probe.events("invitation.accepted.v1")) == 2
                and probe.events("invitation.accepted.v1")
            )
        )
        await probe.caught_up()

    assert notice["Subject"] == "Ada Lovelace accepted your invitation to Acme"
    assert {(e["data"]["invitation_id"], e["data"]["inviter_id"]) for e in accepted} == {
        (ada_id, str(boss_id)),
        (eve_id, str(boss_id)),
    }
    [request] = probe.events("invitation.acceptance_email_requested.v1")
    assert request["data"]["invitation_id"] == ada_id  # eve's inviter opted out for hers
    # Events name the account whose request caused them; none when an event did.
    issued = {e["data"]["invitation_id"]: e for e in probe.events("invitation.issued.v1")}
    assert issued[ada_id]["actor_id"] == str(boss_id)
    assert {e["actor_id"] for e in accepted} == {None}
    # The acceptance email's outcome is not announced: the email events' kinds are closed.
    assert all(e["data"]["kind"] == "invitation" for e in probe.events("email.sent.v1"))

    turned_off = await api.put(
        f"{API}/settings/me", json={"notify_on_acceptance": False}, headers=boss
    )
    assert turned_off.json() == {"notify_on_acceptance": False}
    assert (await api.get(f"{API}/settings/me", headers=boss)).json() == turned_off.json()
    assert (await api.get(f"{API}/settings/me", headers=ADMIN)).json() == {
        "notify_on_acceptance": True
    }


async def publish_user_created(
    amqp_url: str,
    namespace: Namespace,
    user_id: uuid.UUID,
    email: str,
    name: str,
    *,
    invitation_id: str | None = None,
) -> None:
    created = new_event(
        UserCreated(
            user_id=user_id,
            email=email,
            username=email.split("@")[0].lower(),
            name=name,
            roles=["user"],
            status="pending",
            created_at=datetime.now(UTC),
            invitation_id=uuid.UUID(invitation_id) if invitation_id else None,
        ),
        producer="users",
    )
    await publish_raw(amqp_url, namespace.exchange, "user.created.v1", created.to_json())
