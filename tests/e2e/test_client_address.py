"""The client address the throttles count, as the users process sees it behind a proxy: taken
from X-Forwarded-For only when the connection comes from TRUSTED_PROXIES. Otherwise, behind a
gateway or an ingress, every client would share the proxy's address and lock each other out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import environment
from tests.support.broker import Namespace
from tests.support.databases import DatabaseFactory
from tests.support.services import ServiceProcess
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.e2e

MAX_FAILURES_PER_ADDRESS = 3


@asynccontextmanager
async def users_process(
    amqp_url: str,
    databases: DatabaseFactory,
    namespace: Namespace,
    smtp_server: SmtpServer,
    folder: Path,
    trusted_proxies: str | None,
) -> AsyncIterator[str]:
    urls = dict.fromkeys(("invitations", "mailer", "auth-listener"), "")
    urls["users"] = await databases.create("users")
    env = environment(amqp_url, namespace, smtp_server, urls) | {
        "LOGIN_MAX_FAILURES_PER_ADDRESS": str(MAX_FAILURES_PER_ADDRESS),
    }
    if trusted_proxies is not None:
        env["TRUSTED_PROXIES"] = trusted_proxies
    process = ServiceProcess("users", env, folder).start()
    try:
        await asyncio.to_thread(process.wait_ready)
        yield process.url
    finally:
        await asyncio.to_thread(process.stop)


async def failed_login(client: httpx.AsyncClient, forwarded_for: str, login: str) -> int:
    response = await client.post(
        "/api/v1/auth/login",
        json={"login": login, "password": "not the password"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return response.status_code


async def lock_out(client: httpx.AsyncClient, forwarded_for: str) -> None:
    # Different logins, so that only the per-address limit can be reached.
    for attempt in range(MAX_FAILURES_PER_ADDRESS):
        assert await failed_login(client, forwarded_for, f"nobody{attempt}") == 401
    assert await failed_login(client, forwarded_for, "nobody-more") == 429


@pytest.mark.parametrize(
    ("trusted_proxies", "another_client_gets"),
    [
        # The test connects from 127.0.0.1, so trusting it makes the test the proxy: each
        # client it forwards is throttled on its own.
        ("127.0.0.1", 401),
        # Anyone else's claim changes nothing: the connection's own address is locked out.
        (None, 429),
        ("192.0.2.1", 429),
    ],
    ids=["trusted", "default", "another"],
)
async def test_forwarded_addresses_count_only_from_a_trusted_proxy(
    trusted_proxies: str | None,
    another_client_gets: int,
    amqp_url: str,
    databases: DatabaseFactory,
    namespace: Namespace,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    async with (
        users_process(
            amqp_url, databases, namespace, smtp_server, tmp_path, trusted_proxies
        ) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        await lock_out(client, "203.0.113.5")
        assert await failed_login(client, "203.0.113.6", "somebody") == another_client_gets
