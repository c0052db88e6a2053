"""An outage answers 503, not 500 (issue 11 §4): while PostgreSQL is unreachable the HTTP API
answers a JSON 503 with Retry-After, and nothing of the refused request is written."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from invitations.bootstrap import MIGRATIONS, create_app
from invitations.settings import InvitationsSettings
from tests.support.auth import admin_headers, verifier_settings
from tests.support.broker import Namespace
from tests.support.databases import DatabaseFactory
from tests.support.factories import service_settings
from tests.support.services import in_process
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


def through(proxy: TcpProxy, database_url: str) -> str:
    parts = urlsplit(database_url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{proxy.port}" if credentials else f"127.0.0.1:{proxy.port}"
    return parts._replace(netloc=netloc).geturl()


async def test_the_api_answers_503_while_the_database_is_away_and_writes_nothing(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace
) -> None:
    database_url = await databases.create_migrated("invitations", MIGRATIONS)
    target = urlsplit(database_url)
    proxy = await TcpProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    settings = InvitationsSettings(
        **service_settings(namespace, amqp_url, through(proxy, database_url)),
        **verifier_settings(),
    )
    try:
        async with in_process(create_app, settings) as client:
            listed = await client.get("/api/v1/invitations", headers=admin_headers())
            assert listed.status_code == 200, listed.text  # pooled connections exist

            await proxy.cut()
            for _ in range(2):  # the pooled connection that breaks, then a new one refused
                response = await client.post(
                    "/api/v1/invitations",
                    json={"emails": "x@example.com"},
                    headers=admin_headers(),
                )
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"] == "5"
                assert response.headers["content-type"] == "application/json"
                assert isinstance(response.json()["detail"], str)
            assert (await client.get("/ready")).status_code == 503

            await proxy.restore()
            listed = await client.get("/api/v1/invitations", headers=admin_headers())
            assert listed.status_code == 200, listed.text
            assert listed.json()["items"] == []
    finally:
        await proxy.cut()
