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
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
from fastapi import FastAPI
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


CREATE_APP: dict[str, Callable[[Any], FastAPI]] = {
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


async def _user_created_tries(database_url: str) -> tuple[bool, int]:
    """Whether the users relay published the admin's UserCreated, and how often it tried."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            query = text(
                "SELECT published_at IS NOT NULL, attempts FROM outbox"
                " WHERE event_type = 'UserCreated'"
            )
            row = (await connection.execute(query)).one_or_none()
    finally:
        await engine.dispose()
    return (False, 0) if row is None else (bool(row[0]), int(row[1]))


async def _users_relay_tries_again(database_url: str, *, first: bool) -> None:
    """Until the users relay has tried the admin's UserCreated (again, unless ``first``) or has
    published it. A try that failed counts one attempt; a publish sets published_at."""
    published, before = await _user_created_tries(database_url)
    if published:
        return
    if first:
        before = 0

    async def tried() -> bool:
        published, attempts = await _user_created_tries(database_url)
        return published or attempts > before

    await eventually(tried, timeout=10)


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
            users_url = settings["users"].database_url
            for position, service in enumerate(order, start=1):
                await stack.enter_async_context(in_process(CREATE_APP[service], settings[service]))
                if "users" in order[:position] and position < len(order):
                    # Before the next service declares its queues, the users relay tries (and,
                    # without the hold-back, publishes) the admin's UserCreated once more: it
                    # meets every intermediate state of the start-up.
                    await _users_relay_tries_again(users_url, first=service == "users")

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
