"""Guaranteed delivery against the real broker and PostgreSQL: the outbox outlives a broker
outage, consumers resume after reconnection, and relay replicas never publish a row twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from faststream.rabbit import Channel, RabbitBroker
from sqlalchemy import insert, select, update

from invitations.adapters.orm import messaging
from invitations.bootstrap import MIGRATIONS, create_app
from invitations.settings import InvitationsSettings
from onboarding_shared.contract import EmailSent, UserActivated, new_event
from onboarding_shared.db import create_engine, session_factory
from onboarding_shared.messaging.outbox import OutboxRelay, RelaySettings, outbox_row
from onboarding_shared.messaging.publisher import RabbitPublisher
from onboarding_shared.settings import broker_user
from tests.support.auth import admin_headers, verifier_settings
from tests.support.broker import EventProbe, Namespace, eventually, publish_raw
from tests.support.databases import DatabaseFactory
from tests.support.factories import service_settings
from tests.support.services import in_process
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


def through(proxy: TcpProxy, amqp_url: str) -> str:
    parts = urlsplit(amqp_url)
    return parts._replace(
        netloc=f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    ).geturl()


async def invitations_behind_a_proxy(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace
) -> tuple[TcpProxy, InvitationsSettings]:
    """The invitations service's settings, reaching the broker through a proxy the test cuts."""
    target = urlsplit(amqp_url)
    proxy = await TcpProxy(target.hostname or "127.0.0.1", target.port or 5672).start()
    database_url = await databases.create_migrated("invitations", MIGRATIONS)
    settings = InvitationsSettings(
        **service_settings(namespace, through(proxy, amqp_url), database_url),
        **verifier_settings(),
    )
    return proxy, settings


async def pending_attempts(database_url: str) -> list[int]:
    """How often the relay tried each outbox row that is not published yet."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            query = select(messaging.outbox.c.attempts).where(
                messaging.outbox.c.published_at.is_(None)
            )
            return list((await connection.execute(query)).scalars())
    finally:
        await engine.dispose()


async def test_requests_succeed_while_the_broker_is_away_and_events_go_out_when_it_returns(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace, probe: EventProbe
) -> None:
    proxy, settings = await invitations_behind_a_proxy(databases, amqp_url, namespace)
    try:
        async with in_process(create_app, settings) as client:
            await proxy.cut()

            async def broker_reported_away() -> bool:
                return bool((await client.get("/ready")).json()["broker"] != "ok")

            assert await eventually(broker_reported_away, timeout=10)
            # Still ready: the database serves, and events wait in the outbox.
            assert (await client.get("/ready")).status_code == 200

            response = await client.post(
                "/api/v1/invitations",
                json={"emails": "x@example.com, y@example.com"},
                headers=admin_headers(),
            )
            assert response.status_code == 202

            async def every_row_tried_and_failed() -> bool:
                attempts = await pending_attempts(settings.database_url)
                return len(attempts) == 4 and all(count >= 1 for count in attempts)

            await eventually(every_row_tried_and_failed, timeout=10)
            relay: OutboxRelay = client.app.state.runtime.relay  # type: ignore[attr-defined]
            # Each invitation: the public fact and the mailer's request.
            assert (await relay.stats()).pending == 4
            assert probe.events("invitation.issued.v1") == []

            await proxy.restore()
            published = await eventually(
                lambda: (
                    len(probe.events("invitation.requested.v2")) == 2
                    and len(probe.events("invitation.issued.v1")) == 2
                ),
                timeout=60,
            )
            assert published

            async def drained() -> bool:
                return (await relay.stats()).pending == 0

            assert await eventually(drained, timeout=10)

            # The consumer reconnected too: an outcome published now is applied.
            invitation_id = response.json()["results"][0]["invitation_id"]
            sent = new_event(
                EmailSent(
                    email_id=uuid.uuid4(),
                    kind="invitation",
                    reference_id=invitation_id,
                    recipient="x@example.com",
                    attempts=1,
                    sent_at=datetime.now(UTC),
                ),
                producer="tests",
            )
            await publish_raw(amqp_url, namespace.exchange, "email.sent.v1", sent.to_json())

            async def marked_sent() -> bool:
                listing = (
                    await client.get(
                        "/api/v1/invitations", params={"status": "sent"}, headers=admin_headers()
                    )
                ).json()
                return [item["id"] for item in listing["items"]] == [invitation_id]

            assert await eventually(marked_sent, timeout=30)
    finally:
        await proxy.cut()


async def test_relay_replicas_share_the_outbox_and_publish_each_row_once(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace, probe: EventProbe
) -> None:
    database_url = await databases.create_migrated("invitations", MIGRATIONS)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    rows = [
        outbox_row(
            new_event(
                UserActivated(user_id=uuid.uuid4(), activated_at=datetime.now(UTC)), producer="t"
            )
        )
        for _ in range(300)
    ]
    async with sessions() as session, session.begin():
        await session.execute(insert(messaging.outbox), rows)

    brokers = [
        RabbitBroker(amqp_url, default_channel=Channel(on_return_raises=True)) for _ in range(2)
    ]
    relays = []
    for broker in brokers:
        await broker.connect()
        publisher = RabbitPublisher(
            broker, namespace.exchange, timeout=10, user_id=broker_user(amqp_url)
        )
        relays.append(
            OutboxRelay(sessions, messaging.outbox, publisher, RelaySettings(batch_size=25))
        )

    async def drain_outbox(relay: OutboxRelay) -> int:
        published = 0
        while (count := await relay.relay_once()) > 0:
            published += count
        return published

    try:
        counts = await asyncio.gather(*(drain_outbox(relay) for relay in relays))
        await eventually(lambda: len(probe.events("user.activated.v1")) >= 300, timeout=30)
        await probe.caught_up()  # any duplicate has arrived too
    finally:
        for broker in brokers:
            await broker.stop()
        await engine.dispose()

    ids = [event["event_id"] for event in probe.events("user.activated.v1")]
    assert len(ids) == 300 == len(set(ids))
    assert sum(counts) == 300
    assert all(count > 0 for count in counts), f"one replica did all the work: {counts}"


async def test_pending_rows_go_out_at_once_when_the_broker_returns(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace, probe: EventProbe
) -> None:
    """A reconnection resets the backoff the rows built up during the outage (issue 11 §3)."""
    proxy, settings = await invitations_behind_a_proxy(databases, amqp_url, namespace)
    database_url = settings.database_url
    engine = create_engine(database_url)
    try:
        async with in_process(create_app, settings) as client:
            relay: OutboxRelay = client.app.state.runtime.relay  # type: ignore[attr-defined]
            await proxy.cut()
            response = await client.post(
                "/api/v1/invitations",
                json={"emails": "x@example.com, y@example.com"},
                headers=admin_headers(),
            )
            assert response.status_code == 202

            async def backing_off() -> bool:
                return all(count >= 2 for count in await pending_attempts(database_url))

            assert await eventually(backing_off, timeout=30)
            # Where a long outage's backoff gets them: without the reset they would wait this.
            async with engine.begin() as connection:
                await connection.execute(
                    update(messaging.outbox)
                    .where(messaging.outbox.c.published_at.is_(None))
                    .values(next_attempt_at=datetime.now(UTC) + timedelta(minutes=2))
                )
            assert (await relay.stats()).pending == 4

            await proxy.restore()

            async def drained() -> bool:
                return (await relay.stats()).pending == 0

            # The client reconnects within its reconnect interval (2 s); then all go at once.
            assert await eventually(drained, timeout=10)
            assert len(probe.events("invitation.issued.v1")) == 2
    finally:
        await proxy.cut()
        await engine.dispose()
