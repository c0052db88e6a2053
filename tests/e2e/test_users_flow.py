"""Manual user creation through the running processes: the admin logs in, creates a user who is
pending, the user logs in, and the Users list shows them active. The other services check the
same tokens without asking the users service."""

from __future__ import annotations

import re
from email.message import EmailMessage

import httpx
import pytest

from tests.e2e.conftest import RunningSystem
from tests.support import auth
from tests.support.broker import eventually

pytestmark = pytest.mark.e2e

SET_PASSWORD = re.compile(r"http://chat\.acme\.test/set-password#token=([A-Za-z0-9_-]{43})")


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


async def test_a_created_user_is_pending_until_their_first_login(system: RunningSystem) -> None:
    async with httpx.AsyncClient(base_url=system.url("users"), timeout=10) as users:
        login = await users.post(
            "/api/v1/auth/login",
            json={"login": auth.ADMIN["email"], "password": auth.ADMIN["password"]},
        )
        assert login.status_code == 200, login.text
        admin = auth.bearer(login.json()["access_token"])

        created = await users.post(
            "/api/v1/users",
            json={
                "email": "grace@example.com",
                "name": "Grace Hopper",
                "username": "grace",
                "password": "Cobol-compiler-59",
                "send_welcome_email": True,
            },
            headers=admin,
        )
        assert created.status_code == 201, created.text
        grace = created.json()
        assert grace["status"] == "pending"

        pending = await users.get("/api/v1/users", params={"status": "pending"}, headers=admin)
        assert grace["id"] in [item["id"] for item in pending.json()["items"]]

        first = await users.post(
            "/api/v1/auth/login", json={"login": "grace", "password": "Cobol-compiler-59"}
        )
        assert first.status_code == 200, first.text

        async def listed_active() -> dict[str, object] | None:
            listing = await users.get("/api/v1/users", params={"search": "grace"}, headers=admin)
            items = listing.json()["items"]
            return items[0] if items and items[0]["status"] == "active" else None

        active = await eventually(listed_active, timeout=60)
        assert active["first_login_at"] is not None

        # The same admin token opens the other services' admin routes; a user's does not.
        grace_token = auth.bearer(first.json()["access_token"])
        async with httpx.AsyncClient(base_url=system.url("invitations"), timeout=10) as other:
            assert (await other.get("/api/v1/invitations", headers=admin)).status_code == 200
            assert (await other.get("/api/v1/invitations", headers=grace_token)).status_code == 403
            assert (await other.get("/api/v1/invitations")).status_code == 401

    welcome = await eventually(
        lambda: [m for m in system.smtp.messages if m["To"] == "grace@example.com"], timeout=60
    )
    assert welcome[0]["Subject"] == "Welcome to Acme Chat"
    assert "Cobol-compiler-59" not in html_of(welcome[0])
    assert SET_PASSWORD.search(html_of(welcome[0])) is None  # the admin chose the password


async def test_a_random_password_user_sets_it_from_the_emailed_link(system: RunningSystem) -> None:
    async with httpx.AsyncClient(base_url=system.url("users"), timeout=10) as users:
        login = await users.post(
            "/api/v1/auth/login",
            json={"login": auth.ADMIN["username"], "password": auth.ADMIN["password"]},
        )
        admin = auth.bearer(login.json()["access_token"])
        created = await users.post(
            "/api/v1/users",
            json={
                "email": "linus@example.com",
                "name": "Linus",
                "username": "linus",
                "set_random_password": True,
                "send_welcome_email": True,
            },
            headers=admin,
        )
        assert created.status_code == 201, created.text
        mail = await eventually(
            lambda: [m for m in system.smtp.messages if m["To"] == "linus@example.com"],
            timeout=60,
        )
        link = SET_PASSWORD.search(html_of(mail[0]))
        assert link is not None
        chosen = {"token": link.group(1), "password": "Freax-kernel-91"}
        assert (await users.post("/api/v1/auth/set-password", json=chosen)).status_code == 204
        assert (await users.post("/api/v1/auth/set-password", json=chosen)).status_code == 400
        logged_in = await users.post(
            "/api/v1/auth/login", json={"login": "linus", "password": "Freax-kernel-91"}
        )
        assert logged_in.status_code == 200
