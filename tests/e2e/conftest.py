"""The whole system as real processes: four services on the real broker and PostgreSQL, with a
real SMTP server started by the test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import auth
from tests.support.broker import Namespace
from tests.support.databases import DatabaseFactory
from tests.support.factories import INVITATION_TOKEN_SECRET
from tests.support.services import ServiceProcess
from tests.support.smtp import SmtpServer

SERVICES = ("users", "invitations", "mailer", "auth-listener")


@dataclass
class RunningSystem:
    services: dict[str, ServiceProcess]
    smtp: SmtpServer
    namespace: Namespace

    def url(self, service: str) -> str:
        return self.services[service].url


def environment(
    amqp_url: str, namespace: Namespace, smtp: SmtpServer, urls: dict[str, str]
) -> dict[str, str]:
    return {
        "AMQP_URL": amqp_url,
        **namespace.environment,
        **smtp.environment,
        "SMTP_FROM": "Acme Chat <no-reply@acme.test>",
        "WORKSPACE_NAME": "Acme Chat",
        "PUBLIC_URL": "http://chat.acme.test",
        "RETRY_DELAYS_SECONDS": "[0.5, 1]",
        "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
        "STATUS_INTERVAL_SECONDS": "1",
        "LOG_LEVEL": "INFO",
        "USERS_DATABASE_URL": urls["users"],
        "INVITATIONS_DATABASE_URL": urls["invitations"],
        "MAILER_DATABASE_URL": urls["mailer"],
        "AUTH_LISTENER_DATABASE_URL": urls["auth-listener"],
        "INVITATION_TOKEN_SECRET": INVITATION_TOKEN_SECRET,
        **auth.environment(),
    }


@pytest.fixture
async def system(
    request: pytest.FixtureRequest,
    amqp_url: str,
    databases: DatabaseFactory,
    namespace: Namespace,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> AsyncIterator[RunningSystem]:
    urls = {name: await databases.create(name.replace("-", "_")) for name in SERVICES}
    env = environment(amqp_url, namespace, smtp_server, urls)
    if marker := request.node.get_closest_marker("system_environment"):
        env.update(marker.kwargs)
    processes = {name: ServiceProcess(name, env, tmp_path).start() for name in SERVICES}
    try:
        await asyncio.gather(*(asyncio.to_thread(p.wait_ready) for p in processes.values()))
        yield RunningSystem(processes, smtp_server, namespace)
    finally:
        codes = await asyncio.gather(*(asyncio.to_thread(p.stop) for p in processes.values()))
    # uvicorn re-raises SIGTERM after its graceful shutdown, hence -15 for a clean stop.
    unclean = {
        name: process.log_tail(15)
        for (name, process), code in zip(processes.items(), codes, strict=True)
        if code not in (0, -15) or '"service stopped"' not in process.log_tail(5)
    }
    assert not unclean, f"services that did not stop cleanly on SIGTERM: {unclean}"
