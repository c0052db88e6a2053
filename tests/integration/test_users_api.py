"""The users service against the real broker and PostgreSQL: creating accounts (each rule,
duplicates, permissions), logging in and its throttling, editing, the last admin, avatars."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from onboarding_shared.auth import TokenVerifier
from tests.support import auth, images
from tests.support.broker import EventProbe, Namespace, eventually
from tests.support.databases import DatabaseFactory
from tests.support.services import in_process
from tests.support.users_service import admin_token, new_user, token_for, users_settings
from users.bootstrap import create_app

pytestmark = pytest.mark.integration


class Users:
    """The users service's HTTP API, logged in as the seeded admin."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.headers = auth.bearer(token)

    async def create(self, **fields: Any) -> httpx.Response:
        return await self.client.post(
            "/api/v1/users", json=new_user(**fields), headers=self.headers
        )

    async def patch(self, user_id: str, **fields: Any) -> httpx.Response:
        return await self.client.patch(
            f"/api/v1/users/{user_id}", json=fields, headers=self.headers
        )

    async def login(self, login: str, password: str, **kwargs: Any) -> httpx.Response:
        return await self.client.post(
            "/api/v1/auth/login", json={"login": login, "password": password}, **kwargs
        )


@pytest.fixture
async def users(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace, probe: EventProbe
) -> AsyncIterator[Users]:
    settings = await users_settings(
        databases, amqp_url, namespace, login_max_failures_per_account=3, avatar_size=64
    )
    async with in_process(create_app, settings) as client:
        yield Users(client, await admin_token(client))


def fields_named(response: httpx.Response) -> set[str]:
    return {problem["loc"][-1] for problem in response.json()["detail"]}


async def test_the_first_admin_exists_and_is_announced(users: Users, probe: EventProbe) -> None:
    created = await eventually(lambda: probe.events("user.created.v1"))
    assert created[0]["data"]["username"] == "root"
    assert created[0]["data"]["roles"] == ["admin"]
    assert "Root-password-42" not in str(created)


async def test_an_admin_creates_a_pending_user_and_user_created_goes_out(
    users: Users, probe: EventProbe
) -> None:
    response = await users.create(
        nickname="Countess", bio="First programmer", status_text="Computing", verified=True
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["status"], body["roles"], body["nickname"]) == ("pending", ["user"], "Countess")
    assert body["avatar_url"] == f"/api/v1/users/{body['id']}/avatar"
    assert body["welcome_email"] == {"status": "not_requested", "note": None}
    events = await eventually(
        lambda: [e for e in probe.events("user.created.v1") if e["data"]["username"] == "ada"]
    )
    assert events[0]["data"]["user_id"] == body["id"]
    assert "Analytical-engine-1" not in str(probe.events())


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"email": "nope"}, {"email"}),
        ({"username": "ada lovelace"}, {"username"}),
        ({"name": " "}, {"name"}),
        ({"bio": "b" * 261}, {"bio"}),
        ({"status_text": "s" * 121}, {"status_text"}),
        ({"roles": ["wizard"]}, {"roles"}),
        ({"password": "short"}, {"password"}),
        ({"password": None}, {"password"}),
        ({"password": None, "set_random_password": True}, {"send_welcome_email"}),
        ({"email": "bad", "username": "bad name", "bio": "b" * 300}, {"email", "username", "bio"}),
        ({"surprise": 1}, {"surprise"}),
        ({"verified": "perhaps"}, {"verified"}),
    ],
)
async def test_invalid_fields_answer_422_naming_each(
    users: Users, fields: dict[str, Any], named: set[str]
) -> None:
    response = await users.create(**fields)
    assert response.status_code == 422, response.text
    assert fields_named(response) == named


async def test_missing_fields_and_malformed_json_answer_422(users: Users) -> None:
    response = await users.client.post(
        "/api/v1/users", json={"email": "a@example.com"}, headers=users.headers
    )
    assert response.status_code == 422
    assert {"name", "username"} <= fields_named(response)
    response = await users.client.post(
        "/api/v1/users",
        content=b'{"email": ',
        headers={**users.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422


async def test_duplicates_answer_409_naming_the_field(users: Users) -> None:
    assert (await users.create()).status_code == 201
    response = await users.create(email="ADA@example.com", username="someone")
    assert response.status_code == 409
    assert fields_named(response) == {"email"}
    response = await users.create(email="other@example.com", username="Ada")
    assert (response.status_code, fields_named(response)) == (409, {"username"})


async def test_concurrent_creations_of_one_address_make_one_account(users: Users) -> None:
    answers = await asyncio.gather(*(users.create(username=f"ada{n}") for n in range(5)))
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409, 409]


async def test_only_admins_may_create_users(users: Users) -> None:
    assert (await users.client.post("/api/v1/users", json=new_user())).status_code == 401
    member = auth.bearer(auth.mint_token(roles=("user",)))
    response = await users.client.post("/api/v1/users", json=new_user(), headers=member)
    assert response.status_code == 403
    forged = auth.bearer(auth.mint_token(key=auth.STRANGER_KEY))
    response = await users.client.post("/api/v1/users", json=new_user(), headers=forged)
    assert response.status_code == 401
    response = await users.client.get("/api/v1/users", headers=member)
    assert response.status_code == 403


async def test_a_user_logs_in_by_username_or_email_and_gets_a_token(
    users: Users, probe: EventProbe
) -> None:
    created = (await users.create()).json()
    for login in ("ada", "Ada@Example.com"):
        response = await users.login(login, "Analytical-engine-1")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 3600
        assert body["user"]["id"] == created["id"]
    principal = TokenVerifier(auth.PUBLIC_PEM).verify(body["access_token"])
    assert (principal.user_id, principal.is_admin) == (uuid.UUID(created["id"]), False)
    logins = await eventually(lambda: len(probe.events("user.logged_in.v1")) >= 3)
    assert logins


async def test_wrong_credentials_get_one_generic_answer(users: Users) -> None:
    await users.create()
    wrong = await users.login("ada", "not-the-password")
    unknown = await users.login("nobody", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "invalid login or password"}


async def test_repeated_failures_for_an_account_are_refused_with_retry_after(users: Users) -> None:
    await users.create()
    for _ in range(3):
        assert (await users.login("ada", "wrong-password")).status_code == 401
    refused = await users.login("ada", "Analytical-engine-1")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 300
    # The throttle is per account: the admin still logs in from the same address.
    assert (await users.login("root", auth.ADMIN["password"])).status_code == 200


async def test_concurrent_failures_all_count(users: Users) -> None:
    await users.create()
    answers = await asyncio.gather(*(users.login("ada", f"wrong-{n}") for n in range(6)))
    assert {a.status_code for a in answers} <= {401, 429}
    assert (await users.login("ada", "Analytical-engine-1")).status_code == 429


async def test_edit_and_deactivate(users: Users, probe: EventProbe) -> None:
    created = (await users.create()).json()
    response = await users.patch(
        created["id"], name="Ada King", email="ada@king.org", bio=None, roles=["user", "admin"]
    )
    assert response.status_code == 200, response.text
    assert (response.json()["name"], response.json()["roles"]) == ("Ada King", ["admin", "user"])
    response = await users.patch(created["id"], deactivated=True)
    assert (response.status_code, response.json()["status"]) == (200, "deactivated")
    assert (await users.login("ada", "Analytical-engine-1")).status_code == 403
    updates = await eventually(
        lambda: len(probe.events("user.updated.v1")) == 2 and probe.events("user.updated.v1")
    )
    assert updates[-1]["data"]["status"] == "deactivated"
    response = await users.patch(created["id"], deactivated=False)
    assert response.json()["status"] == "pending"
    assert (await users.login("ada", "Analytical-engine-1")).status_code == 200


async def test_edits_check_their_fields_and_uniqueness(users: Users) -> None:
    first = (await users.create()).json()
    await users.create(email="grace@example.com", username="grace")
    assert (await users.patch(first["id"], email="GRACE@example.com")).status_code == 409
    response = await users.patch(first["id"], username="bad name", bio="b" * 261)
    assert (response.status_code, fields_named(response)) == (422, {"username", "bio"})
    assert (await users.patch(first["id"], password_hash="x")).status_code == 422
    assert (await users.patch(str(uuid.uuid4()), name="x")).status_code == 404
    assert (await users.patch("not-an-id", name="x")).status_code == 422
    unchanged = await users.client.get(f"/api/v1/users/{first['id']}", headers=users.headers)
    assert unchanged.json()["email"] == "ada@example.com"


async def test_the_last_admin_cannot_be_removed(users: Users) -> None:
    listing = await users.client.get("/api/v1/users", headers=users.headers)
    root = listing.json()["items"][0]
    for change in ({"roles": ["user"]}, {"deactivated": True}):
        response = await users.patch(root["id"], **change)
        assert response.status_code == 409, response.text
        assert "at least one admin" in response.json()["detail"]
    second = (await users.create(roles=["admin"])).json()
    assert (await users.patch(root["id"], roles=["user"])).status_code == 200
    assert (await users.patch(second["id"], deactivated=True)).status_code == 409


async def test_two_admins_demoting_each_other_at_once_leave_one(users: Users) -> None:
    listing = await users.client.get("/api/v1/users", headers=users.headers)
    root = listing.json()["items"][0]
    second = (await users.create(roles=["admin"])).json()
    answers = await asyncio.gather(
        users.patch(root["id"], roles=["user"]), users.patch(second["id"], roles=["user"])
    )
    assert sorted(a.status_code for a in answers) == [200, 409]


async def test_the_list_filters_searches_and_pages(users: Users) -> None:
    for n in range(5):
        await users.create(email=f"user{n}@example.com", username=f"user{n}", name=f"Person {n}")
    page = await users.client.get(
        "/api/v1/users",
        params={"limit": 2, "offset": 0, "status": "pending"},
        headers=users.headers,
    )
    body = page.json()
    assert (body["total"], len(body["items"])) == (6, 2)  # five and the admin
    seen: list[str] = []
    for offset in range(0, 6, 2):
        page = await users.client.get(
            "/api/v1/users", params={"limit": 2, "offset": offset}, headers=users.headers
        )
        seen += [item["id"] for item in page.json()["items"]]
    assert len(set(seen)) == 6
    found = await users.client.get(
        "/api/v1/users", params={"search": "person 3"}, headers=users.headers
    )
    assert [item["username"] for item in found.json()["items"]] == ["user3"]
    found = await users.client.get(
        "/api/v1/users", params={"search": "USER4@EXAMPLE"}, headers=users.headers
    )
    assert found.json()["total"] == 1
    bad = await users.client.get("/api/v1/users", params={"status": "odd"}, headers=users.headers)
    assert bad.status_code == 422
    item = found.json()["items"][0]
    assert {
        "id",
        "name",
        "username",
        "email",
        "status",
        "roles",
        "created_at",
        "first_login_at",
        "avatar_url",
    } <= set(item)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF", "WEBP"])
async def test_each_accepted_image_type_becomes_the_avatar(users: Users, image_format: str) -> None:
    created = (await users.create()).json()
    path = f"/api/v1/users/{created['id']}/avatar"
    upload = images.real_image(image_format)
    response = await users.client.put(
        path, files={"image": ("me.bin", upload, "application/octet-stream")}, headers=users.headers
    )
    assert response.status_code == 200, response.text
    etag = response.json()["etag"]
    served = await users.client.get(path)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["etag"] == f'"{etag}"'
    assert "max-age" in served.headers["cache-control"]
    assert served.content.startswith(b"\x89PNG")
    again = await users.client.get(path, headers={"If-None-Match": f'"{etag}"'})
    assert again.status_code == 304
    listed = await users.client.get(f"/api/v1/users/{created['id']}", headers=users.headers)
    assert listed.json()["avatar_url"] == response.json()["avatar_url"]


@pytest.mark.parametrize(
    ("upload", "status"),
    [
        (images.SVG, 415),
        (images.HTML, 415),
        (images.truncated("PNG"), 422),
        (images.truncated("JPEG"), 422),
        (images.POLYGLOT, 422),
        (images.decompression_bomb(), 422),
        (images.real_image("PNG", size=(1200, 1200), compress_level=0), 413),
    ],
    ids=["svg", "html", "truncated-png", "truncated-jpeg", "polyglot", "bomb", "too-large"],
)
async def test_each_refused_kind_of_upload_answers_with_a_reason(
    users: Users, upload: bytes, status: int
) -> None:
    created = (await users.create()).json()
    path = f"/api/v1/users/{created['id']}/avatar"
    response = await users.client.put(
        path, files={"image": ("x.png", upload, "image/png")}, headers=users.headers
    )
    assert response.status_code == status, response.text
    assert response.json()["detail"].startswith("image refused: ")
    served = await users.client.get(path)
    assert served.headers["content-type"].startswith("image/svg+xml")  # still the default


async def test_the_default_avatar_and_who_may_change_it(users: Users) -> None:
    created = (await users.create(name="Ada <script>")).json()
    path = f"/api/v1/users/{created['id']}/avatar"
    default = await users.client.get(path)
    assert default.headers["content-type"].startswith("image/svg+xml")
    assert b"<script>" not in default.content and b">AS<" in default.content
    assert "sandbox" in default.headers["content-security-policy"]
    png = {"image": ("a.png", images.real_image("PNG"), "image/png")}
    stranger = auth.bearer(auth.mint_token(roles=("user",)))
    assert (await users.client.put(path, files=png, headers=stranger)).status_code == 403
    assert (await users.client.put(path, files=png)).status_code == 401
    own = auth.bearer(await token_for(users.client, "ada", "Analytical-engine-1"))
    assert (await users.client.put(path, files=png, headers=own)).status_code == 200
    assert (await users.client.delete(path, headers=own)).status_code == 204
    assert (await users.client.get(path)).headers["content-type"].startswith("image/svg+xml")
    assert (await users.client.get(f"/api/v1/users/{uuid.uuid4()}/avatar")).status_code == 404
