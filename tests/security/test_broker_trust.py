"""Trust on the bus, against the real broker with the deploy's own permissions.

The four services run as processes in a vhost of their own, each as its own broker user with
exactly the permissions and topic permissions of deploy/rabbitmq/definitions.json. Then:
- the whole flow works with those rights alone (invite, email, join, sign in, activation);
- a user with full write access on the vhost forges an invitation and a welcome email: no mail
  goes out, the forged join link is unknown, and each forged message is parked as coming from
  an untrusted producer, and announced (event.rejected.v1) naming who sent it;
- nobody can borrow a service's name (user_id), an identity provider may publish logins and
  nothing else, and no service but the mailer may read the mail exchange."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from aio_pika.exceptions import AMQPError

from onboarding_shared.contract import (
    Envelope,
    InvitationIssued,
    InvitationRequested,
    UserLoggedIn,
    WelcomeEmailRequested,
    new_event,
)
from onboarding_shared.messaging.consumer import REASON_HEADER
from tests.support import auth
from tests.support.auth import admin_headers
from tests.support.broker import drain, eventually, publish_raw
from tests.support.broker_admin import ScratchVhost, rabbitmqctl
from tests.support.databases import DatabaseFactory
from tests.support.factories import INVITATION_TOKEN_SECRET
from tests.support.services import ServiceProcess
from tests.support.smtp import SmtpServer
from users.domain.passwords import hash_link_token

pytestmark = pytest.mark.e2e

DEFINITIONS = Path(__file__).resolve().parents[2] / "deploy" / "rabbitmq" / "definitions.json"
SERVICES = ("users", "invitations", "mailer", "auth-listener")
EVENTS = "onboarding.events"
MAIL = "onboarding.events.mail"
JOIN_LINK = re.compile(r"http://chat\.acme\.test/join/([A-Za-z0-9_-]{43,})")
ADA = {"name": "Ada Lovelace", "username": "ada", "password": "Analytical-engine-1"}


def definitions_for(user: str) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """The permissions and topic permissions deploy/rabbitmq/definitions.json gives ``user``."""
    document = json.loads(DEFINITIONS.read_text())
    (permission,) = [p for p in document["permissions"] if p["user"] == user]
    topics = {
        t["exchange"]: (t["write"], t["read"])
        for t in document.get("topic_permissions", [])
        if t["user"] == user
    }
    return {key: permission[key] for key in ("configure", "write", "read")}, topics


@dataclass
class TrustedSystem:
    vhost: ScratchVhost
    services: dict[str, ServiceProcess]
    smtp: SmtpServer
    admin_url: str  # guest, for the test's own looking around

    def url(self, service: str) -> str:
        return self.services[service].url

    def broker_url(self, user_base: str) -> str:
        return self.vhost.url(self.vhost.user_name(user_base))


@pytest.fixture
def vhost(amqp_url: str) -> Iterator[ScratchVhost]:
    created = ScratchVhost(amqp_url).create()
    try:
        yield created
    finally:
        created.delete()


@pytest.fixture
async def system(
    vhost: ScratchVhost,
    databases: DatabaseFactory,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> AsyncIterator[TrustedSystem]:
    users = {}
    for service in SERVICES:
        permissions, topics = definitions_for(f"onboarding-{service}")
        users[service] = vhost.add_user(f"onboarding-{service}", **permissions, topics=topics)
    rabbitmqctl("set_permissions", "-p", vhost.name, "guest", ".*", ".*", ".*")
    common = {
        **smtp_server.environment,
        "SMTP_FROM": "Acme Chat <no-reply@acme.test>",
        "WORKSPACE_NAME": "Acme Chat",
        "PUBLIC_URL": "http://chat.acme.test",
        "RETRY_DELAYS_SECONDS": "[0.5, 1]",
        "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
        "STATUS_INTERVAL_SECONDS": "1",
        "PRODUCER_USERS": json.dumps(users),
        "INVITATION_TOKEN_SECRET": INVITATION_TOKEN_SECRET,
        **auth.environment(),
    }
    processes = {}
    for service in SERVICES:
        database = await databases.create(service.replace("-", "_"))
        env = {
            **common,
            "AMQP_URL": vhost.url(users[service]),
            f"{service.replace('-', '_').upper()}_DATABASE_URL": database,
        }
        processes[service] = ServiceProcess(service, env, tmp_path).start()
    try:
        await asyncio.gather(*(asyncio.to_thread(p.wait_ready) for p in processes.values()))
        yield TrustedSystem(vhost, processes, smtp_server, vhost.admin_url)
    finally:
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in processes.values()))


def an_issued_invitation() -> Envelope[InvitationIssued]:
    return new_event(
        InvitationIssued(
            invitation_id=uuid.uuid4(),
            email="x@example.com",
            expires_at=datetime.now(UTC) + timedelta(days=1),
            token_hash="0" * 64,
        ),
        producer="invitations",
    )


def join_token(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    found = JOIN_LINK.search(str(part.get_content()))
    assert found, "no Join Chat link"
    return found.group(1)


async def test_each_service_does_its_whole_job_with_its_own_rights_alone(
    system: TrustedSystem,
) -> None:
    async with (
        httpx.AsyncClient(
            base_url=system.url("invitations"), timeout=10, headers=admin_headers()
        ) as invitations,
        httpx.AsyncClient(base_url=system.url("users"), timeout=10) as users,
    ):
        invited = await invitations.post("/api/v1/invitations", json={"emails": "ada@example.com"})
        assert invited.status_code == 202, invited.text
        await eventually(lambda: len(system.smtp.messages) == 1, timeout=60)
        token = join_token(system.smtp.messages[0])

        async def join_page_ready() -> bool:
            return (await users.get(f"/join/{token}")).status_code == 200

        assert await eventually(join_page_ready, timeout=30, interval=0.3)
        joined = await users.post(f"/join/{token}", data=ADA)
        assert joined.status_code == 201, joined.text
        login = await users.post(
            "/api/v1/auth/login", json={"login": "ada", "password": ADA["password"]}
        )
        assert login.status_code == 200, login.text

        async def active() -> bool:
            listing = await users.get("/api/v1/users", headers=admin_headers())
            return any(
                u["username"] == "ada" and u["status"] == "active" for u in listing.json()["items"]
            )

        assert await eventually(active, timeout=30, interval=0.3)


async def test_forged_invitations_and_welcome_emails_change_nothing_and_are_parked(
    system: TrustedSystem,
) -> None:
    forger = system.vhost.add_user("forger", configure="^$", write=".*", read="^$")
    forger_url = system.vhost.url(forger)
    token = "f" * 43
    expires = datetime.now(UTC) + timedelta(days=7)
    invitation_id = uuid.uuid4()
    issued = InvitationIssued(
        invitation_id=invitation_id,
        email="ceo@victim.example",
        expires_at=expires,
        token_hash=hash_link_token(token),
    )
    requested = InvitationRequested(
        invitation_id=invitation_id,
        email="ceo@victim.example",
        workspace_name="Acme Chat",
        join_url=f"https://evil.example/join/{token}",
        expires_at=expires,
    )
    welcome = WelcomeEmailRequested(
        user_id=uuid.uuid4(),
        email="cfo@victim.example",
        name="CFO",
        username="cfo",
        workspace_name="Acme Chat",
        login_url="https://evil.example/",
    )
    async with listening(system, "event.rejected.v1") as rejections:
        for data in (issued, requested, welcome):
            event = new_event(data, producer="invitations")
            exchange = data.spec.exchange(EVENTS)
            # Naming itself (user_id) is allowed, and lets the rejection name it back.
            await publish_raw(forger_url, exchange, event.routing_key, event.to_json())

        parked = {}
        for queue in ("users.invitations", "mailer.invitations", "mailer.welcome-emails"):
            taken = await eventually(
                partial(drain, system.admin_url, f"{queue}.parked"), timeout=30
            )
            parked[queue] = [m.headers.get(REASON_HEADER) for m in taken]
        announced = await eventually(lambda: len(rejections) >= 3 and rejections, timeout=10)

    assert parked == {
        "users.invitations": ["untrusted producer"],
        "mailer.invitations": ["untrusted producer"],
        "mailer.welcome-emails": ["untrusted producer"],
    }
    assert system.smtp.messages == []
    async with httpx.AsyncClient(base_url=system.url("users"), timeout=10) as users:
        assert (await users.get(f"/join/{token}")).status_code == 404
    assert {r["data"]["producer"] for r in announced} == {forger}
    assert {r["data"]["reason"] for r in announced} == {"untrusted producer"}


async def test_nobody_can_publish_in_a_services_name(system: TrustedSystem) -> None:
    forger = system.vhost.add_user("forger", configure="^$", write=".*", read="^$")
    event = an_issued_invitation()
    invitations_user = system.vhost.user_name("onboarding-invitations")
    with pytest.raises(AMQPError):  # the broker refuses a user_id that is not the connection's
        await publish_raw(
            system.vhost.url(forger),
            EVENTS,
            event.routing_key,
            event.to_json(),
            user_id=invitations_user,
        )


async def test_an_identity_provider_may_publish_logins_and_nothing_else(
    system: TrustedSystem,
) -> None:
    permissions, topics = definitions_for("onboarding-idp")
    idp = system.vhost.add_user("onboarding-idp", **permissions, topics=topics)
    login = new_event(
        UserLoggedIn(email="ada@example.com", logged_in_at=datetime.now(UTC), source="keycloak"),
        producer="idp",
    )
    await publish_raw(system.vhost.url(idp), EVENTS, login.routing_key, login.to_json())

    forged = an_issued_invitation()
    with pytest.raises(AMQPError):  # topic permission: user.logged_in.v1 only
        await publish_raw(system.vhost.url(idp), EVENTS, forged.routing_key, forged.to_json())


async def test_only_the_mailer_may_read_the_mail_exchange(system: TrustedSystem) -> None:
    for service in ("users", "invitations", "auth-listener"):
        connection = await aio_pika.connect(system.broker_url(f"onboarding-{service}"))
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(f"{service}.snoop", auto_delete=True)
            with pytest.raises(AMQPError):
                await queue.bind(MAIL, routing_key="#")


@asynccontextmanager
async def listening(system: TrustedSystem, routing_key: str) -> AsyncIterator[list[Any]]:
    """What arrives on ``routing_key`` while the block runs, collected in the background."""
    seen: list[Any] = []
    connection = await aio_pika.connect(system.admin_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(EVENTS, routing_key=routing_key)

        async def keep(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            seen.append(json.loads(message.body))
            await message.ack()

        await queue.consume(keep)
        yield seen
