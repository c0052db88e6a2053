"""No event is lost because of start-up order (issue 11 §B).

On a fresh broker namespace the four services start one after the other, in every order. The
users service publishes the first admin's UserCreated as soon as it starts; invitations and the
auth-listener must both receive it, even when they start after users already tried to publish it
(routable to one consumer's queue while another's does not exist yet would lose it for the
other).

Two guards, each tested alone where it matters:
- every order with the relay's hold-back only, as in production, where each service's broker
  user may declare only its own queues (here the declaration of the others' is switched off);
- a few orders with both, as in `make run` and the tests: the first service to start declares
  every service's queues."""

from __future__ import annotations

import asyncio
import itertools
from contextlib import AsyncExitStack
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from auth_listener.bootstrap import create_app as create_auth_listener
from invitations.bootstrap import MIGRATIONS as INVITATIONS_MIGRATIONS
from invitations.bootstrap import create_app as create_invitations
from invitations.settings import InvitationsSettings
from mailer.bootstrap import MIGRATIONS as MAILER_MIGRATIONS
from mailer.bootstrap import create_app as create_mailer
from mailer.settings import MailerSettings
from onboarding_shared import runtime
from tests.support import auth
from tests.support.broker import Namespace, eventually
from tests.support.databases import DatabaseFactory
from tests.support.factories import service_settings
from tests.support.services import in_process
from tests.support.users_service import auth_listener_settings, users_settings
from users.bootstrap import create_app as create_users

pytestmark = pytest.mark.integration

SERVICES = ("users", "invitations", "mailer", "auth-listener")
ORDERS = list(itertools.permutations(SERVICES))
REPRESENTATIVE = [
    ("users", "invitations", "mailer", "auth-listener"),
    ("users", "auth-listener", "mailer", "invitations"),
    ("invitations", "users", "mailer", "auth-listener"),
    ("auth-listener", "mailer", "invitations", "users"),
]
# Long enough for the users relay to try (and, without the hold-back, publish) the admin's
# UserCreated before the next service declares its queues.
BETWEEN_STARTS_SECONDS = 0.6


async def _settings(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace
) -> dict[str, Any]:
    invitations_db = await databases.create_migrated("invitations", INVITATIONS_MIGRATIONS)
    mailer_db = await databases.create_migrated("mailer", MAILER_MIGRATIONS)
    return {
        "users": await users_settings(databases, amqp_url, namespace),
        "auth-listener": await auth_listener_settings(databases, amqp_url, namespace),
        "invitations": InvitationsSettings(
            **service_settings(namespace, amqp_url, invitations_db),
            **auth.verifier_settings(),
            public_url="https://chat.acme.test",
            workspace_name="Acme",
        ),
        # No SMTP: its queues are declared all the same, and emails wait there.
        "mailer": MailerSettings(
            **service_settings(namespace, amqp_url, mailer_db, http_port=8997),
            **auth.verifier_settings(),
        ),
    }


CREATE_APP = {
    "users": create_users,
    "invitations": create_invitations,
    "mailer": create_mailer,
    "auth-listener": create_auth_listener,
}


async def _count(database_url: str, table: str) -> int:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            query = text(f"SELECT count(*) FROM {table}")
            return int((await connection.execute(query)).scalar_one())
    finally:
        await engine.dispose()


async def _declares_only_its_own(*_: Any, **__: Any) -> list[str]:
    return []


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(order) for order in ORDERS])
async def test_with_own_queues_only_no_consumer_misses_the_first_event(
    order: tuple[str, ...],
    databases: DatabaseFactory,
    amqp_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As in production, where each service's broker user may declare no other's queues: the
    # relay holds an event back until every queue that consumes it exists.
    monkeypatch.setattr(runtime, "declare_other_consumer_queues", _declares_only_its_own)
    await _every_consumer_receives_the_first_event(order, databases, amqp_url)


@pytest.mark.parametrize("order", REPRESENTATIVE, ids=["-".join(order) for order in REPRESENTATIVE])
async def test_with_every_queue_declared_no_consumer_misses_the_first_event(
    order: tuple[str, ...], databases: DatabaseFactory, amqp_url: str
) -> None:
    await _every_consumer_receives_the_first_event(order, databases, amqp_url)


async def _every_consumer_receives_the_first_event(
    order: tuple[str, ...], databases: DatabaseFactory, amqp_url: str
) -> None:
    namespace = Namespace.fresh()
    settings = await _settings(databases, amqp_url, namespace)
    try:
        async with AsyncExitStack() as stack:
            for service in order:
                await stack.enter_async_context(in_process(CREATE_APP[service], settings[service]))
                await asyncio.sleep(BETWEEN_STARTS_SECONDS)

            async def both_know_the_admin() -> bool:
                accounts, members = await asyncio.gather(
                    _count(settings["auth-listener"].database_url, "known_accounts"),
                    _count(settings["invitations"].database_url, "members"),
                )
                return accounts == 1 and members == 1

            # Fails (condition not met) when a consumer missed the admin's UserCreated.
            await eventually(both_know_the_admin, timeout=20)
    finally:
        await namespace.delete(amqp_url)
