"""Pending -> Active through the auth-listener, against the real broker and PostgreSQL: through
our login, a generic external UserLoggedIn, a Keycloak LOGIN message, and a login that arrives
before UserCreated. A burst of logins of active users writes nothing to the users database."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from auth_listener.bootstrap import create_app as create_auth_listener
from auth_listener.entrypoints.subscribers import KEYCLOAK_QUEUE, LOGINS_QUEUE
from onboarding_shared.contract import UserLoggedIn, new_event
from tests.support import auth
from tests.support.broker import EventProbe, Namespace, drain, eventually, publish_raw
from tests.support.databases import DatabaseFactory
from tests.support.services import in_process
from tests.support.users_service import (
    admin_token,
    auth_listener_settings,
    counted,
    new_user,
    users_settings,
)
from users.bootstrap import create_app as create_users

pytestmark = pytest.mark.integration

# A sample message as keycloak-to-rabbitmq publishes it on amq.topic after a login.
KEYCLOAK_LOGIN: dict[str, Any] = {
    "@class": "com.github.aznamier.keycloak.event.provider.EventClientNotificationMqMsg",
    "time": 1796040000000,
    "type": "LOGIN",
    "realmId": "REALM",
    "clientId": "chat",
    "userId": "0b1e7f8a-6d1c-4c57-8a8e-3f1d2c9b7a10",
    "ipAddress": "10.0.0.7",
    "sessionId": "5c0a5b3e-1f77-4d38-bb7c-1b0b4d0e8f21",
    "error": None,
    "details": {"auth_method": "openid-connect", "username": "ada", "redirect_uri": "/"},
}


@dataclass
class System:
    users: httpx.AsyncClient
    headers: dict[str, str]
    amqp_url: str
    namespace: Namespace
    users_database: str
    auth_listener_database: str
    realm: str

    async def create(self, **fields: Any) -> dict[str, Any]:
        response = await self.users.post(
            "/api/v1/users", json=new_user(**fields), headers=self.headers
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def status_of(self, user_id: str) -> str:
        response = await self.users.get(f"/api/v1/users/{user_id}", headers=self.headers)
        status: str = response.json()["status"]
        return status

    async def becomes_active(self, user_id: str) -> dict[str, Any]:
        await eventually(lambda: self._is_active(user_id), timeout=30)
        response = await self.users.get(f"/api/v1/users/{user_id}", headers=self.headers)
        body: dict[str, Any] = response.json()
        return body

    async def _is_active(self, user_id: str) -> bool:
        return await self.status_of(user_id) == "active"

    async def publish_login(self, **identity: Any) -> None:
        event = new_event(
            UserLoggedIn(logged_in_at=datetime.now(UTC), source="sso", **identity),
            producer="external-idp",
        )
        await publish_raw(
            self.amqp_url, self.namespace.exchange, "user.logged_in.v1", event.to_json()
        )

    async def publish_keycloak(self, body: dict[str, Any]) -> None:
        key = f"KK.EVENT.CLIENT.{self.realm}.SUCCESS.chat.LOGIN"
        await publish_raw(self.amqp_url, "amq.topic", key, json.dumps(body).encode())


@pytest.fixture
async def system(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace, probe: EventProbe
) -> AsyncIterator[System]:
    realm = namespace.queue_prefix.strip(".")  # no other test run binds this realm
    users = await users_settings(databases, amqp_url, namespace)
    listener = await auth_listener_settings(
        databases,
        amqp_url,
        namespace,
        keycloak_events_enabled=True,
        keycloak_realm=realm,
        keycloak_client="chat",
    )
    async with (
        in_process(create_auth_listener, listener),
        in_process(create_users, users) as client,
    ):
        yield System(
            client,
            auth.bearer(await admin_token(client)),
            amqp_url,
            namespace,
            users.database_url,
            listener.database_url,
            realm,
        )


async def row_counts(database_url: str, *tables: str) -> dict[str, Any]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return {
                table: (await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar()
                for table in tables
            }
    finally:
        await engine.dispose()


async def test_our_login_activates_a_pending_user(system: System, probe: EventProbe) -> None:
    ada = await system.create()
    assert ada["status"] == "pending" and ada["first_login_at"] is None
    logged_in = await system.users.post(
        "/api/v1/auth/login", json={"login": "ada", "password": "Analytical-engine-1"}
    )
    assert logged_in.status_code == 200
    active = await system.becomes_active(ada["id"])
    assert active["first_login_at"] is not None
    activated = await eventually(lambda: probe.events("user.activated.v1"))
    assert [e["data"]["user_id"] for e in activated if e["data"]["user_id"] == ada["id"]]
    listing = await system.users.get(
        "/api/v1/users", params={"status": "active"}, headers=system.headers
    )
    assert ada["id"] in [item["id"] for item in listing.json()["items"]]


@pytest.mark.parametrize("identifier", ["user_id", "email", "username"])
async def test_an_external_login_activates_by_any_identifier(
    system: System, identifier: str
) -> None:
    ada = await system.create()
    identity = {"user_id": ada["id"], "email": "ADA@example.com", "username": "Ada"}[identifier]
    await system.publish_login(**{identifier: identity})
    await system.becomes_active(ada["id"])


async def test_a_keycloak_login_activates_by_username(system: System) -> None:
    ada = await system.create()
    await system.publish_keycloak({**KEYCLOAK_LOGIN, "realmId": system.realm})
    active = await system.becomes_active(ada["id"])
    assert active["first_login_at"].startswith("2026-11-30")  # Keycloak's time, not ours


async def test_a_keycloak_login_by_email_and_malformed_ones_are_parked(system: System) -> None:
    ada = await system.create()
    await system.publish_keycloak({**KEYCLOAK_LOGIN, "time": "yesterday"})
    await system.publish_keycloak({**KEYCLOAK_LOGIN, "details": {}})
    await system.publish_keycloak({**KEYCLOAK_LOGIN, "details": {"email": "ada@EXAMPLE.com"}})
    await system.becomes_active(ada["id"])
    parked_queue = system.namespace.queue(KEYCLOAK_QUEUE) + ".parked"
    parked = await eventually(lambda: _drained(system, parked_queue, 2), timeout=20)
    reasons = sorted(str(m.headers["x-parked-reason"]) for m in parked)
    assert reasons == [
        "not a Keycloak login event: neither details.email nor details.username is given",
        "not a Keycloak login event: time is not a number of milliseconds",
    ]


_taken: dict[str, list[Any]] = {}


async def _drained(system: System, queue: str, expected: int) -> list[Any] | None:
    _taken.setdefault(queue, []).extend(await drain(system.amqp_url, queue))
    return _taken[queue] if len(_taken[queue]) >= expected else None


async def test_a_login_before_user_created_activates_once_the_user_arrives(
    system: System,
) -> None:
    unknown = counted("onboarding_logins_total", channel="event", outcome="unknown_account")
    await system.publish_login(email="early@example.com")
    await eventually(
        lambda: (
            counted("onboarding_logins_total", channel="event", outcome="unknown_account") > unknown
        )
    )
    early = await system.create(email="early@example.com", username="early")
    await system.becomes_active(early["id"])


async def test_a_malformed_logged_in_event_is_parked_and_others_go_on(system: System) -> None:
    ada = await system.create()
    nobody = json.loads(
        new_event(
            UserLoggedIn(logged_in_at=datetime.now(UTC), username="x"), producer="x"
        ).to_json()
    )
    nobody["data"]["username"] = None  # no identifier at all
    for body in (b"{not json", json.dumps(nobody).encode()):
        await publish_raw(system.amqp_url, system.namespace.exchange, "user.logged_in.v1", body)
    await system.publish_login(user_id=ada["id"])
    await system.becomes_active(ada["id"])
    parked_queue = system.namespace.queue(LOGINS_QUEUE) + ".parked"
    parked = await eventually(lambda: _drained(system, parked_queue, 2), timeout=20)
    reasons = sorted(str(m.headers["x-parked-reason"]) for m in parked)
    assert reasons[0].startswith("invalid message: data: Value error, one of user_id")
    assert reasons[1] == "not an event envelope: JSONDecodeError"


async def test_a_burst_of_logins_of_active_users_does_not_touch_the_users_database(
    system: System, probe: EventProbe
) -> None:
    ada = await system.create()
    await system.publish_login(user_id=ada["id"])
    await system.becomes_active(ada["id"])
    await eventually(lambda: probe.events("user.updated.v1"))
    tables = ("users", "outbox", "inbox", "login_throttles")
    users_before = await row_counts(system.users_database, *tables)
    listener_before = await row_counts(
        system.auth_listener_database, "known_accounts", "pending_logins", "inbox", "outbox"
    )
    handled = counted("onboarding_logins_total", channel="event", outcome="already_active")

    burst = 300
    at = datetime.now(UTC) - timedelta(seconds=1)
    for number in range(burst):
        event = new_event(
            UserLoggedIn(
                logged_in_at=at,
                **({"user_id": ada["id"]} if number % 2 else {"username": "ada"}),
            ),
            producer="external-idp",
        )
        await publish_raw(
            system.amqp_url, system.namespace.exchange, "user.logged_in.v1", event.to_json()
        )
    await eventually(
        lambda: (
            counted("onboarding_logins_total", channel="event", outcome="already_active")
            >= handled + burst
        ),
        timeout=60,
    )

    assert await row_counts(system.users_database, *tables) == users_before
    listener_after = await row_counts(
        system.auth_listener_database, "known_accounts", "pending_logins", "inbox", "outbox"
    )
    assert listener_after == listener_before  # the busy path writes nowhere
    assert (
        len([e for e in probe.events("user.activated.v1") if e["data"]["user_id"] == ada["id"]])
        == 1
    )


async def test_a_deactivated_user_stays_deactivated_after_a_login(system: System) -> None:
    ada = await system.create()
    response = await system.users.patch(
        f"/api/v1/users/{ada['id']}", json={"deactivated": True}, headers=system.headers
    )
    assert response.status_code == 200
    outcome = counted("onboarding_logins_total", channel="event", outcome="deactivated")
    await eventually(lambda: _copy_is_deactivated(system, ada["id"]), timeout=20)
    await system.publish_login(user_id=ada["id"])
    await eventually(
        lambda: counted("onboarding_logins_total", channel="event", outcome="deactivated") > outcome
    )
    assert await system.status_of(ada["id"]) == "deactivated"


async def _copy_is_deactivated(system: System, user_id: str) -> bool:
    engine = create_async_engine(system.auth_listener_database)
    try:
        async with engine.connect() as connection:
            status = (
                await connection.execute(
                    text("SELECT status FROM known_accounts WHERE id = :id"),
                    {"id": uuid.UUID(user_id)},
                )
            ).scalar()
    finally:
        await engine.dispose()
    return status == "deactivated"
