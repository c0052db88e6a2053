"""The join page through the running processes: an admin invites an address, the email's Join
Chat link opens the users service's form, the form makes a pending account, the invitation
becomes accepted, the new user logs in and the Users list shows them active. A used link and a
revoked invitation's link are refused."""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningSystem
from tests.support import auth
from tests.support.auth import admin_headers
from tests.support.broker import eventually

pytestmark = pytest.mark.e2e

JOIN_LINK = re.compile(r'href="http://chat\.acme\.test/join/([A-Za-z0-9_-]{43,})"')
ADA = {"name": "Ada Lovelace", "username": "ada", "password": "Analytical-engine-1"}


def token_in(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    link = JOIN_LINK.search(str(part.get_content()))
    assert link, "no Join Chat link"
    return link.group(1)


async def test_an_invitation_link_becomes_an_active_account(system: RunningSystem) -> None:
    async with (
        httpx.AsyncClient(
            base_url=system.url("invitations"), timeout=10, headers=admin_headers()
        ) as invitations,
        httpx.AsyncClient(base_url=system.url("users"), timeout=10) as users,
    ):
        invited = await invitations.post(
            "/api/v1/invitations", json={"emails": "ada@example.com, eve@example.com"}
        )
        assert invited.status_code == 202, invited.text
        ids = {r["email"]: r["invitation_id"] for r in invited.json()["results"]}
        await eventually(lambda: len(system.smtp.messages) == 2, timeout=60)
        tokens = {str(m["To"]): token_in(m) for m in system.smtp.messages}

        # The users service learnt the invitation from the same event as the mailer.
        page = await eventually(
            lambda: _page_if_ready(users, tokens["ada@example.com"]), interval=0.5
        )
        assert "Join Acme Chat" in page.text and "ada@example.com" in page.text

        joined = await users.post(f"/join/{tokens['ada@example.com']}", data=ADA)
        assert joined.status_code == 201, joined.text
        assert "Your account is ready: sign in" in joined.text

        again = await users.post(f"/join/{tokens['ada@example.com']}", data=ADA)
        assert again.status_code == 410 and "already been used" in again.text

        async def accepted() -> bool:
            items = (await invitations.get("/api/v1/invitations", params={"q": "ada"})).json()
            return [item["status"] for item in items["items"]] == ["accepted"]

        await eventually(accepted, timeout=30)

        revoked = await invitations.delete(f"/api/v1/invitations/{ids['eve@example.com']}")
        assert revoked.status_code == 200, revoked.text

        async def refused_as_revoked() -> httpx.Response | None:
            response = await users.get(f"/join/{tokens['eve@example.com']}")
            return response if response.status_code == 410 else None

        refused = await eventually(refused_as_revoked, timeout=30)
        assert "was revoked" in refused.text
        posted = await users.post(
            f"/join/{tokens['eve@example.com']}", json={**ADA, "username": "eve"}
        )
        assert posted.status_code == 410

        login = await users.post(
            "/api/v1/auth/login", json={"login": "ada", "password": ADA["password"]}
        )
        assert login.status_code == 200, login.text
        assert login.json()["user"]["status"] == "pending"

        admin_login = await users.post(
            "/api/v1/auth/login",
            json={"login": auth.ADMIN["username"], "password": auth.ADMIN["password"]},
        )
        admin = auth.bearer(admin_login.json()["access_token"])

        async def listed_active() -> dict[str, Any] | None:
            listed = await users.get("/api/v1/users", params={"search": "ada"}, headers=admin)
            items = listed.json()["items"]
            return items[0] if items and items[0]["status"] == "active" else None

        ada = await eventually(listed_active, timeout=30)
        assert (ada["email"], ada["verified"], ada["roles"]) == ("ada@example.com", True, ["user"])


async def _page_if_ready(users: httpx.AsyncClient, token: str) -> httpx.Response | None:
    """Each unknown-link answer counts as a guess: ask rarely."""
    response = await users.get(f"/join/{token}")
    return response if response.status_code == 200 else None


async def test_whoever_joins_through_an_admin_invitation_is_an_admin(
    system: RunningSystem,
) -> None:
    """The roles travel with the invitation: the invitations service, the public event, the
    users service's grant, the account made by joining, and what the account may then do."""
    async with (
        httpx.AsyncClient(
            base_url=system.url("invitations"), timeout=10, headers=admin_headers()
        ) as invitations,
        httpx.AsyncClient(base_url=system.url("users"), timeout=10) as users,
    ):
        invited = await invitations.post(
            "/api/v1/invitations", json={"emails": "linus@example.com", "roles": ["admin"]}
        )
        assert invited.status_code == 202, invited.text
        [email] = await eventually(
            lambda: [m for m in system.smtp.messages if m["To"] == "linus@example.com"],
            timeout=60,
        )
        token = token_in(email)
        await eventually(lambda: _page_if_ready(users, token), interval=0.5)
        linus = {**ADA, "name": "Linus", "username": "linus"}
        joined = await users.post(f"/join/{token}", data=linus)
        assert joined.status_code == 201, joined.text

        login = await users.post(
            "/api/v1/auth/login", json={"login": "linus", "password": linus["password"]}
        )
        assert login.status_code == 200, login.text
        assert login.json()["user"]["roles"] == ["admin"]
        as_linus = auth.bearer(login.json()["access_token"])
        listed = await users.get("/api/v1/users", params={"search": "linus"}, headers=as_linus)
        assert listed.status_code == 200, listed.text
        assert [item["roles"] for item in listed.json()["items"]] == [["admin"]]


async def test_a_reusable_link_makes_accounts_at_its_domain_up_to_its_uses(
    system: RunningSystem,
) -> None:
    """Created in the invitations service, redeemed on the users service's page, counted back
    in the invitations service from UserCreated."""
    async with (
        httpx.AsyncClient(
            base_url=system.url("invitations"), timeout=10, headers=admin_headers()
        ) as invitations,
        httpx.AsyncClient(base_url=system.url("users"), timeout=10) as users,
    ):
        created = await invitations.post(
            "/api/v1/invitations/links", json={"max_uses": 1, "allowed_domain": "example.com"}
        )
        assert created.status_code == 201, created.text
        link = created.json()
        path = "/join/link/" + link["url"].rsplit("/", 1)[1]
        page = await eventually(lambda: _page_if_ready(users, path.removeprefix("/join/")))
        assert "@example.com" in page.text

        joiner = {**ADA, "email": "mallory@evil.test", "username": "mallory", "name": "Mallory"}
        refused = await users.post(path, data=joiner)
        assert refused.status_code == 422, refused.text
        joined = await users.post(
            path, data={**joiner, "email": "bob@example.com", "username": "bob", "name": "Bob"}
        )
        assert joined.status_code == 201, joined.text
        used_up = await users.post(
            path, data={**joiner, "email": "eve@example.com", "username": "eve", "name": "Eve"}
        )
        assert used_up.status_code == 410

        async def counted() -> bool:
            [item] = (await invitations.get("/api/v1/invitations/links")).json()["items"]
            return bool(item["uses"] == 1 and item["status"] == "used_up")

        await eventually(counted, timeout=30)
        login = await users.post(
            "/api/v1/auth/login", json={"login": "bob", "password": ADA["password"]}
        )
        assert login.status_code == 200, login.text
        assert (login.json()["user"]["verified"], login.json()["user"]["status"]) == (
            False,
            "pending",
        )
