"""What a probe of the running system found in the HTTP APIs (§5 errors, §6 search and names),
replayed against the users and invitations services in process (real broker; PostgreSQL, and
SQLite where the finding was SQLite's)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from invitations.bootstrap import MIGRATIONS as INVITATIONS_MIGRATIONS
from invitations.bootstrap import create_app as create_invitations
from invitations.settings import InvitationsSettings
from onboarding_shared.schema import migrate
from tests.support import auth, images
from tests.support.auth import admin_headers, verifier_settings
from tests.support.broker import Namespace
from tests.support.databases import DatabaseFactory
from tests.support.factories import service_settings
from tests.support.services import in_process
from tests.support.users_service import admin_token, new_user, users_settings
from users.bootstrap import MIGRATIONS as USERS_MIGRATIONS
from users.bootstrap import create_app as create_users
from users.settings import UsersSettings

pytestmark = pytest.mark.integration

USERS = "/api/v1/users"
INVITATIONS = "/api/v1/invitations"
LOGIN = "/api/v1/auth/login"
HUGE_OFFSET = "9223372036854775808"  # 2**63: one past the largest 64-bit integer
MAX_FAILURES = 3


def full_width(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


class Api:
    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.client, self.headers = client, headers

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers)

    async def create_user(self, **fields: Any) -> httpx.Response:
        return await self.client.post(USERS, json=new_user(**fields), headers=self.headers)

    async def login(self, login: str, password: str) -> httpx.Response:
        return await self.client.post(LOGIN, json={"login": login, "password": password})


@pytest.fixture
async def probed_users(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace
) -> AsyncIterator[Api]:
    settings = await users_settings(
        databases, amqp_url, namespace, login_max_failures_per_account=MAX_FAILURES
    )
    async with in_process(create_users, settings) as client:
        yield Api(client, auth.bearer(await admin_token(client)))


@pytest.fixture
async def probed_users_on_sqlite(
    tmp_path: Path, amqp_url: str, namespace: Namespace
) -> AsyncIterator[Api]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'users.db'}"
    await asyncio.to_thread(migrate, url, USERS_MIGRATIONS)
    settings = UsersSettings(
        **service_settings(namespace, amqp_url, url),
        **auth.issuer_settings(),
        workspace_name="Acme Chat",
        public_url="http://chat.acme.example",
    )
    async with in_process(create_users, settings) as client:
        yield Api(client, auth.bearer(await admin_token(client)))


@pytest.fixture
async def probed_invitations(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace
) -> AsyncIterator[Api]:
    url = await databases.create_migrated("invitations", INVITATIONS_MIGRATIONS)
    settings = InvitationsSettings(
        **service_settings(namespace, amqp_url, url),
        **verifier_settings(),
        public_url="https://chat.acme.test",
        workspace_name="Acme",
    )
    async with in_process(create_invitations, settings) as client:
        yield Api(client, admin_headers())


# §5 Errors


async def test_an_offset_past_64_bits_is_a_422_on_both_lists(
    probed_users: Api, probed_invitations: Api
) -> None:
    for api, path in [(probed_users, USERS), (probed_invitations, INVITATIONS)]:
        for params in [{"offset": HUGE_OFFSET}, {"limit": HUGE_OFFSET}, {"offset": "-1"}]:
            response = await api.get(path, **params)
            assert response.status_code == 422, (path, params, response.text)
            assert HUGE_OFFSET not in response.text
        assert (await api.get(path, offset="10000000")).status_code == 200


async def test_a_422_never_echoes_a_password_or_a_token(probed_users: Api) -> None:
    client = probed_users.client
    password = "Correct-horse-" + "x" * 2000  # past the 1,024 characters read at all
    token = "t" * 500
    answers = [
        await client.post(LOGIN, json={"login": "root", "password": password}),
        await client.post("/api/v1/auth/set-password", json={"token": token, "password": "p"}),
        await client.post(
            USERS, json={**new_user(password=password), "admin": True}, headers=probed_users.headers
        ),
        await client.post(LOGIN, json={"login": ["root"], "password": {"secret": password}}),
    ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert password not in answer.text and token not in answer.text
        assert password[:40] not in answer.text
        assert all("input" not in problem for problem in answer.json()["detail"])


async def test_a_10_mb_login_is_refused_with_413_before_it_is_read(probed_users: Api) -> None:
    client = probed_users.client
    body = b'{"login": "root", "password": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    declared = await client.post(LOGIN, content=body, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert len(declared.content) < 200

    sent = 0

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        nonlocal sent
        for _ in range(40):
            sent += 1
            yield b"x" * 262_144

    streamed = await client.post(
        LOGIN, content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert sent < 10  # it stopped reading at about 1 MB, not after 10 MB
    assert len(streamed.content) < 200


async def test_an_avatar_may_be_larger_than_a_json_body_but_not_than_its_own_limit(
    probed_users: Api,
) -> None:
    user_id = (await probed_users.create_user()).json()["id"]
    path = f"{USERS}/{user_id}/avatar"
    picture = images.real_image("PNG", size=(800, 600), compress_level=0)
    assert (
        1_048_576 < len(picture) < 2 * 1024 * 1024
    )  # past the JSON limit, within AVATAR_MAX_BYTES
    accepted = await probed_users.client.put(
        path, files={"image": ("me.png", picture, "image/png")}, headers=probed_users.headers
    )
    assert accepted.status_code == 200, accepted.text
    refused = await probed_users.client.put(
        path,
        files={"image": ("me.png", b"\x89PNG\r\n\x1a\n" + b"0" * (5 * 1024 * 1024), "image/png")},
        headers=probed_users.headers,
    )
    assert refused.status_code == 413
    assert refused.json()["detail"].startswith("image refused: ")


# §6 Search and names


async def test_a_nul_in_a_search_is_a_422_not_every_user_on_sqlite(
    probed_users_on_sqlite: Api,
) -> None:
    api = probed_users_on_sqlite
    assert (await api.create_user()).status_code == 201
    for term in ["\x00", "ada\x00", "\x1b[2J", "\x7f"]:
        answer = await api.get(USERS, search=term)
        assert answer.status_code == 422, (term, answer.text)
        assert (await api.get(USERS, q=term)).status_code == 422
    nobody = (await api.get(USERS, search="nobody-matches-this")).json()
    assert nobody["total"] == 0


async def test_control_characters_in_a_search_are_a_422_on_both_lists(
    probed_users: Api, probed_invitations: Api
) -> None:
    for api, path in [(probed_users, USERS), (probed_invitations, INVITATIONS)]:
        for name in ["search", "q"]:
            assert (await api.get(path, **{name: "a\x00"})).status_code == 422, (path, name)


async def test_both_lists_search_with_search_and_accept_q_as_its_old_name(
    probed_users: Api, probed_invitations: Api
) -> None:
    await probed_users.create_user()
    for params in [{"search": "ada"}, {"q": "ada"}]:  # the README's example, and the old name
        listing = (await probed_users.get(USERS, **params)).json()
        assert [user["username"] for user in listing["items"]] == ["ada"], params
    invited = await probed_invitations.client.post(
        INVITATIONS,
        json={"emails": "linus@example.com, grace@example.com"},
        headers=probed_invitations.headers,
    )
    assert invited.status_code == 202, invited.text
    for params in [{"search": "LINUS@"}, {"q": "linus@"}]:
        listing = (await probed_invitations.get(INVITATIONS, **params)).json()
        assert [item["email"] for item in listing["items"]] == ["linus@example.com"], params
    assert (await probed_invitations.get(INVITATIONS, search="linus", q="grace")).status_code == 422


async def test_a_full_width_email_or_username_is_taken_by_its_ascii_twin(
    probed_users: Api,
) -> None:
    created = await probed_users.create_user(email="bob@example.com", username="bob")
    assert created.status_code == 201, created.text
    twin_email = await probed_users.create_user(
        email=full_width("bob") + "@example.com", username="bobby"
    )
    assert twin_email.status_code == 409, twin_email.text
    twin_name = await probed_users.create_user(
        email="bobby@example.com", username=full_width("BOB")
    )
    assert twin_name.status_code == 409, twin_name.text
    # The full-width form signs in as bob: one account, however it is typed.
    password = new_user()["password"]
    assert (await probed_users.login(full_width("bob"), password)).status_code == 200


async def test_bidi_controls_are_refused_in_names(probed_users: Api) -> None:
    answer = await probed_users.create_user(
        name="Ada \u202eecalevoL", username="ada\u2066", nickname="\u200fCountess"
    )
    assert answer.status_code == 422, answer.text
    assert {problem["loc"][-1] for problem in answer.json()["detail"]} == {
        "name",
        "username",
        "nickname",
    }


async def test_a_quoted_display_name_with_a_comma_is_one_invitation(
    probed_invitations: Api,
) -> None:
    answer = await probed_invitations.client.post(
        INVITATIONS,
        json={"emails": '"Quoted, Name" <q@x.org>, ' + full_width("q") + "@x.org, bad@"},
        headers=probed_invitations.headers,
    )
    assert answer.status_code == 202, answer.text
    results = answer.json()["results"]
    assert [(r["input"], r["outcome"]) for r in results] == [
        ('"Quoted, Name" <q@x.org>', "queued"),
        (full_width("q") + "@x.org", "duplicate_in_request"),
        ("bad@", "invalid"),
    ]


async def test_a_lockout_does_not_tell_which_email_goes_with_a_username(
    probed_users: Api,
) -> None:
    api = probed_users
    assert (await api.create_user()).status_code == 201  # ada / ada@example.com
    password = new_user()["password"]
    for _ in range(MAX_FAILURES):
        assert (await api.login("ada", "wrong-password")).status_code == 401
    assert (await api.login("ada", password)).status_code == 429  # the login typed is locked

    # Ada's email and an unknown address now get the same answer: nothing links them to "ada".
    known = await api.login("ada@example.com", password)  # even the right password
    unknown = await api.login("nobody@example.com", "wrong-password")
    assert known.status_code == unknown.status_code == 401
    assert known.json() == unknown.json()

    # And the same answer again once each is itself locked.
    for _ in range(MAX_FAILURES - 1):
        assert (await api.login("ada@example.com", "wrong-password")).status_code == 401
        assert (await api.login("nobody@example.com", "wrong-password")).status_code == 401
    known, unknown = (
        await api.login("ada@example.com", password),
        await api.login("nobody@example.com", "wrong-password"),
    )
    assert known.status_code == unknown.status_code == 429
    assert known.json() == unknown.json()
    # Other accounts still sign in from the same address.
    assert (await api.login("root", auth.ADMIN["password"])).status_code == 200
