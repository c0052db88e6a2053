"""Settings and HTTP helpers for tests that run the users service and its neighbours."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client import REGISTRY

from auth_listener.bootstrap import MIGRATIONS as AUTH_LISTENER_MIGRATIONS
from auth_listener.settings import AuthListenerSettings
from tests.support import auth
from tests.support.broker import Namespace
from tests.support.databases import DatabaseFactory
from tests.support.factories import service_settings
from users.bootstrap import MIGRATIONS as USERS_MIGRATIONS
from users.settings import UsersSettings


async def users_settings(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace, **overrides: Any
) -> UsersSettings:
    database_url = await databases.create_migrated("users", USERS_MIGRATIONS)
    return UsersSettings(
        **service_settings(namespace, amqp_url, database_url),
        **auth.issuer_settings(),
        **{"workspace_name": "Acme Chat", "public_url": "http://chat.acme.example", **overrides},
    )


async def auth_listener_settings(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace, **overrides: Any
) -> AuthListenerSettings:
    database_url = await databases.create_migrated("auth_listener", AUTH_LISTENER_MIGRATIONS)
    return AuthListenerSettings(
        **service_settings(namespace, amqp_url, database_url, http_port=8998), **overrides
    )


async def token_for(client: httpx.AsyncClient, login: str, password: str) -> str:
    response = await client.post("/api/v1/auth/login", json={"login": login, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def admin_token(client: httpx.AsyncClient) -> str:
    return await token_for(client, auth.ADMIN["username"], auth.ADMIN["password"])


def new_user(**overrides: Any) -> dict[str, Any]:
    return {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "username": "ada",
        "password": "Analytical-engine-1",
        **overrides,
    }


def counted(metric: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0
