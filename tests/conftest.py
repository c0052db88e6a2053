"""Fixtures for the integration and end-to-end layers. Unit tests request none of them.

Their support modules (broker, databases, SMTP server, containers) are imported inside the
fixtures, not here: a unit run, which requests none of these fixtures, never pays for importing
them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.support.broker import EventProbe, Namespace
    from tests.support.databases import DatabaseFactory
    from tests.support.smtp import SmtpServer


@pytest.fixture(scope="session")
def containers() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


@pytest.fixture(scope="session")
def amqp_url(containers: ExitStack) -> str:
    from tests.support import infrastructure

    return infrastructure.amqp_url(containers)


@pytest.fixture(scope="session")
def postgres_admin_url(containers: ExitStack) -> str:
    from tests.support import infrastructure

    return infrastructure.postgres_admin_url(containers)


@pytest.fixture(scope="session")
async def databases(postgres_admin_url: str) -> AsyncIterator[DatabaseFactory]:
    from tests.support.databases import DatabaseFactory

    factory = DatabaseFactory(postgres_admin_url)
    yield factory
    await factory.drop_all()


@pytest.fixture
async def namespace(amqp_url: str) -> AsyncIterator[Namespace]:
    from tests.support.broker import Namespace

    space = Namespace.fresh()
    yield space
    await space.delete(amqp_url)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    from tests.support.smtp import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
async def probe(amqp_url: str, namespace: Namespace) -> AsyncIterator[EventProbe]:
    from tests.support.broker import EventProbe

    listener = await EventProbe(amqp_url, namespace.exchange).start()
    yield listener
    await listener.stop()
