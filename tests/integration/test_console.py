"""PUBLIC_URL's root against the real broker and PostgreSQL, as a browser uses it: the sign-in
form, the session cookie and its attributes, the CSRF token that changes need, the console for
admins and the landing page for members, renewing a session, and signing out."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from http.cookies import Morsel, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from fastapi import FastAPI

from onboarding_shared.auth import CSRF_HEADER, SESSION_COOKIE
from tests.support import auth
from tests.support.broker import EventProbe, Namespace, eventually
from tests.support.databases import DatabaseFactory
from tests.support.services import in_process
from tests.support.users_service import admin_token, new_user, users_settings
from users.bootstrap import create_app

pytestmark = pytest.mark.integration

PUBLIC_URL = "http://chat.acme.example"
CHAT_URL = "https://talk.acme.example/rooms"
MEMBER_PASSWORD = "Analytical-engine-1"
WRONG_PASSWORD = "Not-the-password-77"
GENERIC_REFUSAL = "Wrong username, email or password."


class Browser:
    """One browser: its own cookie jar, sending Origin with its forms as browsers do."""

    def __init__(self, app: FastAPI, origin: str = PUBLIC_URL) -> None:
        self.origin = origin
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=origin, follow_redirects=False
        )

    @property
    def cookie(self) -> str | None:
        return self.client.cookies.get(SESSION_COOKIE)

    def use_cookie(self, token: str) -> None:
        self.client.cookies.set(SESSION_COOKIE, token, domain=urlsplit(self.origin).hostname or "")

    async def sign_in(
        self, login: str, password: str, *, origin: str | None = None
    ) -> httpx.Response:
        return await self.client.post(
            "/sign-in",
            data={"login": login, "password": password},
            headers={"Origin": origin or self.origin},
        )

    async def home(self, query: str = "") -> httpx.Response:
        return await self.client.get(f"/{query}")

    async def renew(self, csrf: str | None) -> httpx.Response:
        headers = {} if csrf is None else {CSRF_HEADER: csrf}
        return await self.client.post("/api/v1/auth/session", headers=headers)

    async def sign_out(self, csrf_token: str) -> httpx.Response:
        return await self.client.post(
            "/sign-out", data={"csrf_token": csrf_token}, headers={"Origin": self.origin}
        )


class Service:
    """The users service in this process, its admin's bearer token, and browsers on it."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.admin = auth.bearer(token)
        self.browsers: list[Browser] = []

    def browser(self, origin: str = PUBLIC_URL) -> Browser:
        browser = Browser(self.client.app, origin)  # type: ignore[attr-defined]
        self.browsers.append(browser)
        return browser

    async def create_member(self, **fields: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/users", json=new_user(**fields), headers=self.admin
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def user(self, user_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/users/{user_id}", headers=self.admin)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def close(self) -> None:
        for browser in self.browsers:
            await browser.client.aclose()


@asynccontextmanager
async def running(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace, **overrides: Any
) -> AsyncIterator[Service]:
    settings = await users_settings(
        databases,
        amqp_url,
        namespace,
        **{"public_url": PUBLIC_URL, "chat_url": CHAT_URL, **overrides},
    )
    async with in_process(create_app, settings) as client:
        service = Service(client, await admin_token(client))
        try:
            yield service
        finally:
            await service.close()


@pytest.fixture
async def service(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace, probe: EventProbe
) -> AsyncIterator[Service]:
    async with running(databases, amqp_url, namespace) as running_service:
        yield running_service


# Reading pages and cookies


def set_cookie(response: httpx.Response) -> Morsel[str] | None:
    """The session cookie that ``response`` sets, with its attributes."""
    for header in response.headers.get_list("set-cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        if SESSION_COOKIE in parsed:
            return parsed[SESSION_COOKIE]
    return None


def cleared(response: httpx.Response) -> bool:
    morsel = set_cookie(response)
    return morsel is not None and morsel.value == "" and morsel["max-age"] == "0"


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def csrf_meta(page: httpx.Response) -> str | None:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    return found.group(1) if found else None


def sign_out_token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def is_sign_in_form(page: httpx.Response) -> bool:
    return 'action="/sign-in"' in page.text and 'name="password"' in page.text


async def signed_in_admin(service: Service) -> tuple[Browser, str]:
    browser = service.browser()
    response = await browser.sign_in(auth.ADMIN["username"], auth.ADMIN["password"])
    assert response.status_code == 303, response.text
    csrf = csrf_meta(await browser.home())
    assert csrf
    return browser, csrf


async def signed_in_member(service: Service, member: dict[str, Any]) -> tuple[Browser, str]:
    browser = service.browser()
    response = await browser.sign_in(member["username"], MEMBER_PASSWORD)
    assert response.status_code == 303, response.text
    return browser, sign_out_token(await browser.home())


# Signing in


async def test_the_admin_signs_in_with_the_form_and_gets_the_console(service: Service) -> None:
    browser = service.browser()
    signed_out = await browser.home()
    assert signed_out.status_code == 200 and is_sign_in_form(signed_out)

    response = await browser.sign_in(auth.ADMIN["username"], auth.ADMIN["password"])
    assert (response.status_code, response.headers["location"]) == (303, "/")
    cookie = set_cookie(response)
    assert cookie is not None and cookie.value
    assert (cookie["httponly"], cookie["samesite"].lower(), cookie["path"]) == (True, "lax", "/")
    assert not cookie["secure"]  # PUBLIC_URL is http here

    page = await browser.home()
    assert page.status_code == 200
    assert not is_sign_in_form(page)
    assert 'id="users-table"' in page.text
    assert csrf_meta(page) == claims(cookie.value)["csrf"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    scripts = re.findall(r"<script[^>]*>", page.text)
    assert scripts and all(" src=" in tag for tag in scripts)  # nothing inline
    assert cookie.value not in page.text  # scripts never see the session token


async def test_the_cookie_reads_and_changes_only_with_the_csrf_token(service: Service) -> None:
    member = await service.create_member()
    browser, csrf = await signed_in_admin(service)
    listing = await browser.client.get("/api/v1/users")
    assert listing.status_code == 200, listing.text
    assert listing.json()["total"] == 2

    path = f"/api/v1/users/{member['id']}"
    for given in ({}, {CSRF_HEADER: "x" * 43}):
        refused = await browser.client.patch(path, json={"name": "Forged"}, headers=given)
        assert refused.status_code == 403, refused.text
        created = await browser.client.post(
            "/api/v1/users",
            json=new_user(email="eve@example.com", username="eve"),
            headers=given,
        )
        assert created.status_code == 403, created.text
    assert (await service.user(member["id"]))["name"] == "Ada Lovelace"
    assert (await browser.client.get("/api/v1/users")).json()["total"] == 2

    changed = await browser.client.patch(
        path, json={"name": "Ada King"}, headers={CSRF_HEADER: csrf}
    )
    assert changed.status_code == 200, changed.text
    assert (await service.user(member["id"]))["name"] == "Ada King"
    created = await browser.client.post(
        "/api/v1/users",
        json=new_user(email="grace@example.com", username="grace"),
        headers={CSRF_HEADER: csrf},
    )
    assert created.status_code == 201, created.text


async def test_a_wrong_password_shows_the_form_again_with_one_generic_message(
    service: Service, probe: EventProbe
) -> None:
    member = await service.create_member()
    browser = service.browser()
    wrong = await browser.sign_in("ada", WRONG_PASSWORD)
    unknown = await browser.sign_in("nobody", WRONG_PASSWORD)
    for page in (wrong, unknown):
        assert page.status_code == 401
        assert is_sign_in_form(page)
        assert GENERIC_REFUSAL in page.text
        assert WRONG_PASSWORD not in page.text
        assert set_cookie(page) is None
    assert 'value="ada"' in wrong.text  # the login stays filled in
    assert browser.cookie is None
    hostile = await browser.sign_in('"><script>alert(1)</script>', WRONG_PASSWORD)
    assert hostile.status_code == 401
    assert "<script>alert(1)" not in hostile.text
    # Only the sign-in that succeeds is a login.
    assert (await browser.sign_in("ada", MEMBER_PASSWORD)).status_code == 303
    logins = await eventually(
        lambda: [
            e for e in probe.events("user.logged_in.v1") if e["data"]["user_id"] == member["id"]
        ]
    )
    assert len(logins) == 1


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "http://chat.acme.example:8080"]
)
async def test_a_sign_in_posted_from_another_origin_is_refused(
    service: Service, origin: str
) -> None:
    browser = service.browser()
    response = await browser.sign_in(auth.ADMIN["username"], auth.ADMIN["password"], origin=origin)
    assert response.status_code == 403
    assert is_sign_in_form(response)
    assert set_cookie(response) is None and browser.cookie is None


async def test_a_member_signs_in_to_a_page_that_leads_to_the_chat(
    service: Service, probe: EventProbe
) -> None:
    member = await service.create_member()
    assert member["status"] == "pending"
    browser = service.browser()
    response = await browser.sign_in("Ada@Example.com", MEMBER_PASSWORD)
    assert response.status_code == 303, response.text
    assert browser.cookie is not None

    page = await browser.home()
    assert page.status_code == 200
    assert "You are in, Ada Lovelace" in page.text
    assert f'href="{CHAT_URL}"' in page.text
    assert csrf_meta(page) is None and 'id="users-table"' not in page.text
    assert sign_out_token(page) == claims(browser.cookie)["csrf"]

    assert (await browser.client.get("/api/v1/users")).status_code == 403
    forbidden = await browser.client.get(
        "/api/v1/users", headers={CSRF_HEADER: sign_out_token(page)}
    )
    assert forbidden.status_code == 403

    logins = await eventually(
        lambda: [
            e for e in probe.events("user.logged_in.v1") if e["data"]["user_id"] == member["id"]
        ]
    )
    assert len(logins) == 1
    assert MEMBER_PASSWORD not in str(probe.events())


async def test_a_deactivated_account_cannot_sign_in_with_the_form(service: Service) -> None:
    member = await service.create_member()
    response = await service.client.patch(
        f"/api/v1/users/{member['id']}", json={"deactivated": True}, headers=service.admin
    )
    assert response.status_code == 200, response.text
    browser = service.browser()
    refused = await browser.sign_in("ada", MEMBER_PASSWORD)
    assert refused.status_code == 403
    assert "deactivated" in refused.text
    assert browser.cookie is None


# Renewing


async def test_renewing_gives_a_new_cookie_for_the_same_session(service: Service) -> None:
    browser, csrf = await signed_in_admin(service)
    before = browser.cookie
    assert before is not None
    assert (await browser.renew(None)).status_code == 403
    assert (await browser.renew("y" * 43)).status_code == 403
    assert browser.cookie == before

    response = await browser.renew(csrf)
    assert response.status_code == 200, response.text
    assert 1790 <= response.json()["expires_in"] <= 1800  # the 30 idle minutes
    renewed = set_cookie(response)
    assert renewed is not None and renewed["httponly"] and renewed["samesite"].lower() == "lax"
    assert renewed.value != before and browser.cookie == renewed.value
    old, new = claims(before), claims(renewed.value)
    assert (new["csrf"], new["auth_time"], new["sub"]) == (
        old["csrf"],
        old["auth_time"],
        old["sub"],
    )
    assert new["exp"] >= old["exp"]
    assert csrf_meta(await browser.home()) == csrf


def session_cookie(
    user_id: str,
    *,
    roles: tuple[str, ...],
    signed_in_ago: timedelta,
    expires_in: timedelta,
    csrf: str = "z" * 43,
) -> str:
    signed_in_at = datetime.now(UTC) - signed_in_ago
    return auth.mint_token(
        user_id=uuid.UUID(user_id),
        roles=roles,
        expires_in=expires_in,
        auth_time=int(signed_in_at.timestamp()),
        csrf=csrf,
    )


async def test_renewing_moves_the_expiry_and_takes_the_accounts_current_roles(
    service: Service,
) -> None:
    member = await service.create_member()
    browser = service.browser()
    token = session_cookie(
        member["id"],
        roles=("admin", "user"),  # what the account had when it signed in
        signed_in_ago=timedelta(hours=1),
        expires_in=timedelta(minutes=2),
    )
    browser.use_cookie(token)
    response = await browser.renew("z" * 43)
    assert response.status_code == 200, response.text
    renewed = set_cookie(response)
    assert renewed is not None
    new = claims(renewed.value)
    assert new["exp"] >= claims(token)["exp"] + 25 * 60
    assert (new["csrf"], new["auth_time"]) == ("z" * 43, claims(token)["auth_time"])
    assert new["roles"] == ["user"]


async def test_a_session_older_than_its_maximum_age_is_not_renewed(service: Service) -> None:
    root = (await service.client.get("/api/v1/users", headers=service.admin)).json()["items"][0]
    browser = service.browser()
    too_old = session_cookie(
        root["id"],
        roles=("admin",),
        signed_in_ago=timedelta(hours=12, minutes=1),
        expires_in=timedelta(minutes=5),
    )
    browser.use_cookie(too_old)
    response = await browser.renew("z" * 43)
    assert response.status_code == 401
    assert cleared(response) and browser.cookie is None
    browser.use_cookie(too_old)
    page = await browser.home()
    assert is_sign_in_form(page) and cleared(page)


async def test_deactivating_an_account_ends_its_session(service: Service) -> None:
    member = await service.create_member()
    browser, csrf = await signed_in_member(service, member)
    token = browser.cookie
    assert token is not None
    assert (await browser.renew(csrf)).status_code == 200
    response = await service.client.patch(
        f"/api/v1/users/{member['id']}", json={"deactivated": True}, headers=service.admin
    )
    assert response.status_code == 200, response.text

    page = await browser.home()
    assert page.status_code == 200 and is_sign_in_form(page)
    assert "You are in" not in page.text
    assert cleared(page) and browser.cookie is None

    browser.use_cookie(token)
    response = await browser.renew(csrf)
    assert (response.status_code, response.json()["detail"]) == (401, "the session has ended")
    assert cleared(response) and browser.cookie is None


# Signing out


async def test_signing_out_clears_the_cookie(service: Service) -> None:
    browser, csrf = await signed_in_admin(service)
    response = await browser.sign_out(csrf)
    assert (response.status_code, response.headers["location"]) == (303, "/?session=signed-out")
    assert cleared(response) and browser.cookie is None
    page = await browser.home("?session=signed-out")
    assert is_sign_in_form(page) and "You have signed out." in page.text


async def test_a_sign_out_without_the_pages_csrf_token_is_refused(service: Service) -> None:
    member = await service.create_member()
    browser, csrf = await signed_in_member(service, member)
    for wrong in ("", "w" * 43):
        response = await browser.sign_out(wrong)
        assert response.status_code == 403
        assert set_cookie(response) is None
    assert browser.cookie is not None
    page = await browser.home()
    assert "You are in" in page.text and sign_out_token(page) == csrf


# An https PUBLIC_URL


async def test_with_an_https_public_url_the_cookie_is_secure(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace
) -> None:
    async with running(
        databases, amqp_url, namespace, public_url="https://chat.acme.example"
    ) as https:
        browser = https.browser("https://chat.acme.example")
        response = await browser.sign_in(auth.ADMIN["username"], auth.ADMIN["password"])
        assert response.status_code == 303, response.text
        cookie = set_cookie(response)
        assert cookie is not None and cookie["secure"] and cookie["httponly"]
        plain = await browser.sign_in(
            auth.ADMIN["username"], auth.ADMIN["password"], origin=PUBLIC_URL
        )
        assert plain.status_code == 403  # http:// is another origin than https://
