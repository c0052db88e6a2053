"""Joining through an invitation, against the real broker and PostgreSQL: the users service
learns the invitation from InvitationIssued, the link makes one pending account (JSON or the
page's form) with the invitation's roles and UserCreated carries the invitation id; used,
revoked, expired and unknown links, and links giving a role the service does not know, are
refused; a taken username is named; guessing links is throttled per client."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import create_async_engine

from onboarding_shared.contract import InvitationIssued, InvitationRevoked, Role, new_event
from tests.support.broker import EventProbe, Namespace, eventually, publish_raw
from tests.support.databases import DatabaseFactory
from tests.support.services import in_process
from tests.support.users_service import token_for, users_settings
from users.adapters.orm import invitation_grants
from users.bootstrap import create_app
from users.domain.passwords import hash_link_token

pytestmark = pytest.mark.integration

MAX_GUESSES = 4
ADA = {"name": "Ada Lovelace", "username": "ada", "password": "Analytical-engine-1"}


@dataclass
class Joining:
    client: httpx.AsyncClient
    amqp_url: str
    namespace: Namespace
    database_url: str

    async def invite(
        self,
        email: str = "ada@example.com",
        *,
        expires_in: timedelta = timedelta(days=7),
        roles: Sequence[Role] = ("user",),
    ) -> tuple[uuid.UUID, str]:
        invitation_id, token = uuid.uuid4(), secrets.token_urlsafe(32)
        await self.publish(
            InvitationIssued(
                invitation_id=invitation_id,
                email=email,
                expires_at=datetime.now(UTC) + expires_in,
                token_hash=hash_link_token(token),
                roles=list(roles),
            ),
            "invitation.issued.v1",
        )
        await self.grant_state(invitation_id, "open")
        return invitation_id, token

    async def revoke(self, invitation_id: uuid.UUID, token: str) -> None:
        await self.publish(
            InvitationRevoked(
                invitation_id=invitation_id,
                token_hash=hash_link_token(token),
                revoked_at=datetime.now(UTC),
            ),
            "invitation.revoked.v1",
        )
        await self.grant_state(invitation_id, "revoked")

    async def publish(self, data: InvitationIssued | InvitationRevoked, key: str) -> None:
        event = new_event(data, producer="invitations")
        await publish_raw(self.amqp_url, self.namespace.exchange, key, event.to_json())

    async def grant_state(self, invitation_id: uuid.UUID, state: str) -> None:
        """Wait on the database, not the page: failed page lookups count as guesses."""

        async def current() -> bool:
            engine = create_async_engine(self.database_url)
            try:
                async with engine.connect() as connection:
                    found: str | None = await connection.scalar(
                        text("SELECT state FROM invitation_grants WHERE invitation_id = :id"),
                        {"id": invitation_id},
                    )
            finally:
                await engine.dispose()
            return found == state

        await eventually(current)

    async def give_grant_roles(self, invitation_id: uuid.UUID, roles: tuple[str, ...]) -> None:
        """Roles no event can carry yet: what a newer invitations service might send."""
        engine = create_async_engine(self.database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    update(invitation_grants)
                    .where(invitation_grants.c.invitation_id == invitation_id)
                    .values(roles=roles)
                )
        finally:
            await engine.dispose()

    async def join_json(self, token: str, **fields: Any) -> httpx.Response:
        return await self.client.post(f"/join/{token}", json={**ADA, **fields})

    async def join_form(self, token: str, **fields: Any) -> httpx.Response:
        return await self.client.post(f"/join/{token}", data={**ADA, **fields})


@pytest.fixture
async def joining(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace, probe: EventProbe
) -> AsyncIterator[Joining]:
    settings = await users_settings(
        databases, amqp_url, namespace, join_max_failures_per_address=MAX_GUESSES
    )
    async with in_process(create_app, settings) as client:
        yield Joining(client, amqp_url, namespace, settings.database_url)


async def test_the_page_shows_the_form_with_the_invited_address(joining: Joining) -> None:
    _, token = await joining.invite()
    page = await joining.client.get(f"/join/{token}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "form-action 'self'" in page.headers["content-security-policy"]
    for expected in ("Join Acme Chat", "ada@example.com", 'name="name"', 'name="username"'):
        assert expected in page.text
    assert 'type="password"' in page.text


async def test_joining_with_json_creates_a_pending_account_and_announces_it(
    joining: Joining, probe: EventProbe
) -> None:
    invitation_id, token = await joining.invite()
    response = await joining.join_json(token)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["email"], body["username"], body["name"]) == (
        "ada@example.com",
        "ada",
        "Ada Lovelace",
    )
    assert (body["status"], body["verified"], body["roles"]) == ("pending", True, ["user"])
    created = await eventually(
        lambda: [e for e in probe.events("user.created.v1") if e["data"]["username"] == "ada"]
    )
    assert created[0]["data"]["invitation_id"] == str(invitation_id)
    assert created[0]["data"]["user_id"] == body["id"]
    ours = str([e for e in probe.events() if e["producer"] == "users"])
    assert token not in ours and ADA["password"] not in ours
    assert await token_for(joining.client, "ada", ADA["password"])

    again = await joining.join_json(token, username="ada2")
    assert again.status_code == 410
    assert "already been used" in again.json()["detail"]
    page = await joining.client.get(f"/join/{token}")
    assert (page.status_code, "already been used" in page.text) == (410, True)


async def test_joining_with_the_form_answers_a_page(joining: Joining, probe: EventProbe) -> None:
    invitation_id, token = await joining.invite("grace@example.com")
    response = await joining.join_form(token, name="Grace Hopper", username="grace")
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "Your account is ready: sign in" in response.text
    assert 'href="http://chat.acme.example/"' in response.text
    created = await eventually(
        lambda: [e for e in probe.events("user.created.v1") if e["data"]["username"] == "grace"]
    )
    assert created[0]["data"]["invitation_id"] == str(invitation_id)
    again = await joining.join_form(token, name="Grace Hopper", username="grace2")
    assert again.status_code == 410 and "already been used" in again.text


async def test_an_invitation_as_admin_makes_an_admin_whoever_joins(
    joining: Joining, probe: EventProbe
) -> None:
    invitation_id, token = await joining.invite("grace@example.com", roles=["admin", "user"])
    page = await joining.client.get(f"/join/{token}")
    assert page.status_code == 200
    assert "Your account will be an admin of Acme Chat" in page.text

    # Whoever holds the link, not the invited address's owner, picks the name.
    response = await joining.join_form(token, name="Someone Else", username="someone")
    assert response.status_code == 201, response.text
    created = await eventually(
        lambda: [e for e in probe.events("user.created.v1") if e["data"]["username"] == "someone"]
    )
    assert created[0]["data"]["roles"] == ["admin", "user"]
    assert created[0]["data"]["invitation_id"] == str(invitation_id)
    token_of_new_admin = await token_for(joining.client, "someone", ADA["password"])
    listed = await joining.client.get(
        "/api/v1/users", headers={"Authorization": f"Bearer {token_of_new_admin}"}
    )
    assert listed.status_code == 200  # an admin's list
    [account] = [user for user in listed.json()["items"] if user["username"] == "someone"]
    assert (account["roles"], account["email"]) == (["admin", "user"], "grace@example.com")

    # An invitation of a plain user, beside it, still makes a plain user.
    _, plain = await joining.invite("linus@example.com")
    assert "be an admin" not in (await joining.client.get(f"/join/{plain}")).text
    joined = await joining.join_json(plain, username="linus")
    assert joined.status_code == 201 and joined.json()["roles"] == ["user"]


async def test_a_role_the_service_does_not_know_makes_the_link_unusable(joining: Joining) -> None:
    invitation_id, token = await joining.invite()
    await joining.give_grant_roles(invitation_id, ("owner", "user"))
    page = await joining.client.get(f"/join/{token}")
    assert page.status_code == 409 and "This invitation cannot be used" in page.text
    assert "does not have. Ask an admin to invite you again" in page.text
    answer = await joining.join_json(token)
    assert answer.status_code == 409 and "cannot be used" in answer.json()["detail"]
    form = await joining.join_form(token)
    assert form.status_code == 409 and "cannot be used" in form.text
    assert not (await joining.client.post("/api/v1/auth/login", json=_login())).is_success
    await joining.grant_state(invitation_id, "open")  # nothing was spent


async def test_revoked_expired_and_unknown_links_are_refused(joining: Joining) -> None:
    revoked_id, revoked = await joining.invite("revoked@example.com")
    await joining.revoke(revoked_id, revoked)
    _, expired = await joining.invite("late@example.com", expires_in=timedelta(seconds=1))

    async def has_expired() -> bool:  # a known link, expired or not, counts as no guess
        return (await joining.client.get(f"/join/{expired}")).status_code == 410

    await eventually(has_expired, timeout=10)
    cases = [
        (revoked, 410, "was revoked"),
        (expired, 410, "has expired"),
        (secrets.token_urlsafe(32), 404, "not valid"),
    ]
    for token, code, words in cases:
        page = await joining.client.get(f"/join/{token}")
        assert page.status_code == code and words in page.text, page.text
        answer = await joining.join_json(token)
        assert answer.status_code == code and words in answer.json()["detail"]
        form = await joining.join_form(token)
        assert form.status_code == code and words in form.text
    assert not (await joining.client.post("/api/v1/auth/login", json=_login())).is_success


async def test_a_taken_username_is_named_and_the_link_stays_usable(joining: Joining) -> None:
    _, first = await joining.invite()
    assert (await joining.join_json(first)).status_code == 201
    _, second = await joining.invite("grace@example.com")
    taken = await joining.join_json(second, name="Grace", username="ADA")
    assert taken.status_code == 409
    assert taken.json()["detail"][0]["msg"] == "username is already in use"
    page = await joining.join_form(second, name="Grace", username="ada")
    assert page.status_code == 409
    assert "That username is already in use" in page.text
    assert 'value="Grace"' in page.text and ADA["password"] not in page.text
    invalid = await joining.join_json(second, password="short")
    assert invalid.status_code == 422
    assert [p["loc"] for p in invalid.json()["detail"]] == [["body", "password"]]
    missing = await joining.client.post(f"/join/{second}", json={"name": "Grace"})
    assert missing.status_code == 422
    assert "short" not in missing.text
    assert (await joining.join_json(second, username="grace")).status_code == 201


async def test_guessing_links_is_throttled_per_client(joining: Joining) -> None:
    _, token = await joining.invite()
    for _ in range(MAX_GUESSES):
        guess = await joining.client.get(f"/join/{secrets.token_urlsafe(32)}")
        assert guess.status_code == 404
    throttled = await joining.client.get(f"/join/{token}")
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    posted = await joining.join_json(token)
    assert posted.status_code == 429 and int(posted.headers["retry-after"]) > 0
    # Logins from the same address are counted apart.
    assert (await joining.client.post("/api/v1/auth/login", json=_login())).status_code == 401


def _login() -> dict[str, str]:
    return {"login": "ada", "password": ADA["password"]}
