"""Reminders on the real database and broker: the schedule lives in the database, so a restart
resumes it; two replicas sweeping at once send each reminder once."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from invitations.adapters import orm
from invitations.adapters.unit_of_work import SqlAlchemyInvitationsUnitOfWork
from invitations.bootstrap import MIGRATIONS as INVITATIONS_MIGRATIONS
from invitations.bootstrap import create_app as create_invitations
from invitations.domain.model import Invitation, InvitationStatus, TokenMinter
from invitations.service_layer import services
from invitations.service_layer.services import InvitePolicy
from invitations.settings import InvitationsSettings
from mailer.bootstrap import MIGRATIONS as MAILER_MIGRATIONS
from mailer.bootstrap import create_app as create_mailer
from mailer.settings import MailerSettings
from onboarding_shared.db import create_engine, session_factory
from tests.support.auth import admin_headers, verifier_settings
from tests.support.broker import Namespace, eventually
from tests.support.databases import DatabaseFactory
from tests.support.factories import INVITATION_TOKEN_SECRET, service_settings
from tests.support.services import in_process
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.integration

JOIN_LINK = re.compile(r"/join/([A-Za-z0-9_-]{43,})")


async def test_a_reminder_due_while_the_service_was_down_goes_out_when_it_is_back(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace, smtp_server: SmtpServer
) -> None:
    invitations_url = await databases.create_migrated("invitations", INVITATIONS_MIGRATIONS)
    invitations = InvitationsSettings(
        **service_settings(namespace, amqp_url, invitations_url),
        **verifier_settings(),
        workspace_name="Acme",
        reminder_check_seconds=0.2,
    )
    mailer = MailerSettings(
        **service_settings(
            namespace, amqp_url, await databases.create_migrated("mailer", MAILER_MIGRATIONS)
        ),
        **verifier_settings(),
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_tls="none",
        smtp_from="Acme <team@acme.test>",
    )

    def both_services() -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return _invitations_beside_the_mailer(invitations, mailer)

    async with (
        in_process(create_mailer, mailer),
        in_process(create_invitations, invitations) as api,
    ):
        invited = await api.post(
            "/api/v1/invitations", json={"emails": "ada@example.com"}, headers=admin_headers()
        )
        assert invited.status_code == 202, invited.text

        async def sent() -> bool:
            [item] = (await api.get("/api/v1/invitations", headers=admin_headers())).json()["items"]
            return bool(item["status"] == "sent" and item["remind_at"])

        await eventually(sent)
    # Down while its reminder fell due (as if 5 days passed).
    engine = create_engine(invitations_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(orm.invitations).values(remind_at=datetime.now(UTC) - timedelta(minutes=1))
            )
    finally:
        await engine.dispose()

    async with (
        in_process(create_mailer, mailer),
        in_process(create_invitations, invitations) as api,
    ):
        await eventually(lambda: len(smtp_server.messages) == 2, timeout=20)
        [item] = (await api.get("/api/v1/invitations", headers=admin_headers())).json()["items"]
    first, reminder = smtp_server.messages
    assert first["Subject"] == "Welcome to Acme"
    assert reminder["Subject"] == "Reminder: Welcome to Acme"
    links = [JOIN_LINK.search(str(m.get_body(("plain",)).get_content())) for m in (first, reminder)]  # type: ignore[union-attr]
    assert links[0] and links[1] and links[0].group(1) == links[1].group(1)
    assert item["reminded_at"] and item["remind_at"] is None and item["status"] == "sent"


async def test_two_replicas_sweeping_at_once_send_each_reminder_once(
    databases: DatabaseFactory,
) -> None:
    url = await databases.create_migrated("invitations", INVITATIONS_MIGRATIONS)
    orm.map_domain()
    now = datetime.now(UTC)
    minter = TokenMinter(INVITATION_TOKEN_SECRET.encode())
    policy = InvitePolicy(
        workspace_name="Acme",
        public_url="https://chat.acme.test",
        default_ttl_hours=168,
        min_ttl_hours=1,
        max_ttl_hours=720,
        max_addresses_per_request=500,
        max_invitations_per_day=5000,
    )
    replicas = [create_engine(url), create_engine(url)]
    uows = [partial(_unit_of_work, engine) for engine in replicas]
    try:
        async with uows[0]() as uow:
            for number in range(250):
                invitation = Invitation.issue(
                    f"person{number}@example.com", now=now, ttl_hours=168, minter=minter
                )
                invitation.status = InvitationStatus.SENT
                invitation.remind_at = now - timedelta(seconds=number)
                uow.invitations.add(invitation)
            await uow.commit()

        counts = await asyncio.gather(
            *(
                services.send_due_reminders(uow(), policy=policy, minter=minter, now=now)
                for uow in uows
                for _ in range(2)  # two sweeps in each replica, at once
            )
        )
        async with replicas[0].connect() as connection:
            bodies = (
                await connection.execute(
                    select(orm.messaging.outbox.c.body).where(
                        orm.messaging.outbox.c.routing_key == "invitation.requested.v2"
                    )
                )
            ).scalars()
            reminded = [json.loads(body)["data"]["invitation_id"] for body in bodies]
    finally:
        for engine in replicas:
            await engine.dispose()
    assert sum(counts) == 250
    assert len(reminded) == len(set(reminded)) == 250


def _unit_of_work(engine: AsyncEngine) -> SqlAlchemyInvitationsUnitOfWork:
    return SqlAlchemyInvitationsUnitOfWork(
        session_factory(engine), orm.messaging, producer="invitations"
    )


@asynccontextmanager
async def _invitations_beside_the_mailer(
    invitations: InvitationsSettings, mailer: MailerSettings
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        in_process(create_mailer, mailer),
        in_process(create_invitations, invitations) as api,
    ):
        yield api
