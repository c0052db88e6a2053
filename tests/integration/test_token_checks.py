"""Other services check tokens themselves, with the public key only: a token from the users
service opens their admin routes; none, a forged or expired one, or a non-admin's, does not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from invitations.bootstrap import MIGRATIONS as INVITATIONS_MIGRATIONS
from invitations.bootstrap import create_app as create_invitations
from invitations.settings import InvitationsSettings
from mailer.bootstrap import MIGRATIONS as MAILER_MIGRATIONS
from mailer.bootstrap import create_app as create_mailer
from mailer.settings import MailerSettings
from tests.support import auth
from tests.support.broker import Namespace
from tests.support.databases import DatabaseFactory
from tests.support.factories import service_settings
from tests.support.services import in_process
from tests.support.users_service import admin_token, new_user, token_for, users_settings
from users.bootstrap import create_app as create_users

pytestmark = pytest.mark.integration

PROTECTED: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("invitations", "POST", "/api/v1/invitations", {"emails": "x@example.com"}),
    ("invitations", "GET", "/api/v1/invitations", None),
    ("mailer", "GET", "/api/v1/mailer/status", None),
]


async def service(
    name: str, databases: DatabaseFactory, amqp_url: str, namespace: Namespace
) -> tuple[Callable[[Any], FastAPI], Any]:
    if name == "invitations":
        url = await databases.create_migrated("invitations", INVITATIONS_MIGRATIONS)
        settings: Any = InvitationsSettings(
            **service_settings(namespace, amqp_url, url, http_port=8996),
            **auth.verifier_settings(),
        )
        return create_invitations, settings
    url = await databases.create_migrated("mailer", MAILER_MIGRATIONS)
    settings = MailerSettings(
        **service_settings(namespace, amqp_url, url, http_port=8995), **auth.verifier_settings()
    )
    return create_mailer, settings


@pytest.mark.parametrize(("name", "method", "path", "body"), PROTECTED)
async def test_admin_routes_of_other_services_check_tokens_locally(
    databases: DatabaseFactory,
    amqp_url: str,
    namespace: Namespace,
    name: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    users = await users_settings(databases, amqp_url, namespace)
    create_app, settings = await service(name, databases, amqp_url, namespace)
    async with in_process(create_users, users) as users_client:
        admin = await admin_token(users_client)
        created = await users_client.post(
            "/api/v1/users", json=new_user(), headers=auth.bearer(admin)
        )
        assert created.status_code == 201
        member = await token_for(users_client, "ada", "Analytical-engine-1")

    # The users service is stopped now: the other service needs nothing from it.
    async with in_process(create_app, settings) as client:

        async def call(headers: dict[str, str]) -> int:
            response = await client.request(method, path, json=body, headers=headers)
            return response.status_code

        assert await call({}) == 401
        assert await call(auth.bearer("not-a-token")) == 401
        assert await call(auth.bearer(auth.mint_token(key=auth.STRANGER_KEY))) == 401
        expired = auth.mint_token(expires_in=timedelta(minutes=-2))
        assert await call(auth.bearer(expired)) == 401
        tampered = admin[:-4] + ("AAAA" if not admin.endswith("AAAA") else "BBBB")
        assert await call(auth.bearer(tampered)) == 401
        assert await call(auth.bearer(member)) == 403
        assert await call(auth.bearer(admin)) in (200, 202)
