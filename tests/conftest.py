"""Fixtures for the integration and end-to-end layers. Unit tests request none of them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack

import pytest

from tests.support import infrastructure
from tests.support.broker import EventProbe, Namespace
from tests.support.databases import DatabaseFactory
from tests.support.smtp import SmtpServer


@pytest.fixture(scope="session")
def containers() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


@pytest.fixture(scope="session")
def amqp_url(containers: ExitStack) -> str:
    return infrastructure.amqp_url(containers)


@pytest.fixture(scope="session")
def postgres_admin_url(containers: ExitStack) -> str:
    return infrastructure.postgres_admin_url(containers)


@pytest.fixture(scope="session")
async def databases(postgres_admin_url: str) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory(postgres_admin_url)
    yield factory
    await factory.drop_all()


@pytest.fixture
async def namespace(amqp_url: str) -> AsyncIterator[Namespace]:
    space = Namespace.fresh()
    yield space
    await space.delete(amqp_url)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
async def probe(amqp_url: str, namespace: Namespace) -> AsyncIterator[EventProbe]:
    listener = await EventProbe(amqp_url, namespace.exchange).start()
    yield listener
    await listener.stop()
