"""Hostile input, unit level (no broker, no database): the body cap refuses before reading, a 422
never repeats what was sent, lookalike and reordering characters in names and addresses, and
quoted names in the invite text area."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from invitations.domain.addresses import AddressProblem, parse_addresses, split_addresses
from onboarding_shared.body_limit import BodyLimitMiddleware, RouteLimit
from onboarding_shared.http_errors import answer_validation_errors_without_input
from onboarding_shared.list_queries import DeprecatedSearch, Limit, Offset, Search, search_term
from users.domain import rules
from users.domain.rules import FieldProblem


def full_width(text: str) -> str:
    """The text in full-width forms (ASCII letters and signs from U+FF01)."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


BIDI_CONTROLS = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2069", "\u200e"]


# The body cap, as a bare ASGI middleware


class Recorder:
    """An ASGI app that reads the whole body, then answers 200 with its length."""

    def __init__(self) -> None:
        self.called = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called = True
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})


async def call(
    app: Any,
    *,
    method: str = "POST",
    path: str = "/api/v1/auth/login",
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
) -> tuple[list[dict[str, Any]], int]:
    """The messages sent back, and how many body chunks the app asked for."""
    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    pending = list(chunks)
    asked = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        body = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent, asked


async def test_a_declared_length_past_the_limit_is_refused_before_any_byte_is_read() -> None:
    inner = Recorder()
    app = BodyLimitMiddleware(inner, max_bytes=1_048_576)
    sent, asked = await call(
        app, headers=[(b"content-length", str(10 * 1024 * 1024).encode())], chunks=[b"x" * 10]
    )
    assert sent[0]["status"] == 413
    assert asked == 0 and not inner.called
    assert len(sent[1]["body"]) < 200  # an answer of a few bytes, never the body back


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit() -> None:
    app = BodyLimitMiddleware(Recorder(), max_bytes=1_048_576)
    chunks = [b"x" * 262_144] * 40  # 10 MB, without a Content-Length
    sent, asked = await call(app, headers=[], chunks=chunks)
    assert sent[0]["status"] == 413
    assert asked == 5  # the fifth chunk passed 1 MB: nothing after it was read
    assert json.loads(sent[1]["body"])["detail"].startswith("request body too large")


async def test_a_body_within_the_limit_reaches_the_app_whole() -> None:
    app = BodyLimitMiddleware(Recorder(), max_bytes=1000)
    sent, _ = await call(app, headers=[(b"content-length", b"1000")], chunks=[b"x" * 1000])
    assert (sent[0]["status"], sent[1]["body"]) == (200, b"1000")


async def test_a_marked_route_has_its_own_limit_and_reason() -> None:
    avatar = RouteLimit(
        frozenset({"PUT"}),
        re.compile(r"^/api/v1/users/(?P<user_id>[^/]+)/avatar$"),
        3_000_000,
        "image refused: larger than 2936832 bytes",
    )
    app = BodyLimitMiddleware(Recorder(), max_bytes=1_048_576, overrides=[avatar])
    two_mb = [(b"content-length", b"2000000")]
    accepted, _ = await call(
        app, method="PUT", path="/api/v1/users/1/avatar", headers=two_mb, chunks=[b""]
    )
    assert accepted[0]["status"] == 200  # larger than the JSON limit, within the avatar's
    refused, _ = await call(
        app,
        method="PUT",
        path="/api/v1/users/1/avatar",
        headers=[(b"content-length", b"3000001")],
        chunks=[],
    )
    assert refused[0]["status"] == 413
    assert json.loads(refused[1]["body"])["detail"].startswith("image refused: ")
    elsewhere, _ = await call(app, path="/api/v1/users", headers=two_mb, chunks=[])
    assert elsewhere[0]["status"] == 413
    # Another method on the avatar's path has the ordinary limit.
    other, _ = await call(app, path="/api/v1/users/1/avatar", headers=two_mb, chunks=[])
    assert other[0]["status"] == 413


# 422 answers


class Secretive(BaseModel):
    login: str = Field(max_length=50)
    password: str = Field(min_length=1, max_length=20)
    token: str = Field(pattern=r"^[a-z]+$")


def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app_with_the_handler())
    return httpx.AsyncClient(transport=transport, base_url="http://service")


def app_with_the_handler() -> FastAPI:
    app = FastAPI()
    answer_validation_errors_without_input(app)

    @app.post("/login")
    async def login(body: Secretive) -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/list")
    async def listing(
        search: Search = None, q: DeprecatedSearch = None, limit: Limit = 50, offset: Offset = 0
    ) -> dict[str, Any]:
        return {"search": search_term(search, q), "limit": limit, "offset": offset}

    return app


async def test_a_422_keeps_the_location_and_reason_but_never_the_input() -> None:
    api = client()
    password, token = "hunter2-" * 40, "Tok3n-Secret-Value"
    response = await api.post(
        "/login", json={"login": "x" * 60, "password": password, "token": token, "extra": 1}
    )
    assert response.status_code == 422
    assert password not in response.text and token not in response.text
    assert "x" * 60 not in response.text
    problems = response.json()["detail"]
    assert {tuple(p["loc"]) for p in problems} == {
        ("body", "login"),
        ("body", "password"),
        ("body", "token"),
    }
    assert all("input" not in p for p in problems)
    # What the schema says stays: the limits a client needs to correct itself.
    assert {p["ctx"].get("max_length") for p in problems if "ctx" in p} >= {50, 20}


async def test_a_malformed_json_body_is_not_echoed_either() -> None:
    api = client()
    body = '{"password": "s3cret-in-broken-json", '
    response = await api.post("/login", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "s3cret-in-broken-json" not in response.text


@pytest.mark.parametrize(
    "query",
    [
        "offset=9223372036854775808",
        "offset=-1",
        "offset=10000001",
        "limit=0",
        "limit=201",
        "limit=9223372036854775808",
    ],
)
async def test_limit_and_offset_are_bounded(query: str) -> None:
    response = await client().get(f"/list?{query}")
    assert response.status_code == 422
    assert "9223372036854775808" not in response.text


@pytest.mark.parametrize("term", ["%00", "a%00b", "%1F", "%7F", "%C2%85"])
async def test_control_characters_in_a_search_are_refused(term: str) -> None:
    api = client()
    for name in ("search", "q"):
        response = await api.get(f"/list?{name}={term}")
        assert response.status_code == 422, (name, term)


async def test_search_and_its_deprecated_alias() -> None:
    api = client()
    assert (await api.get("/list?search=ada")).json()["search"] == "ada"
    assert (await api.get("/list?q=ada")).json()["search"] == "ada"
    assert (await api.get("/list?q=ada&search=ada")).json()["search"] == "ada"
    assert (await api.get("/list?q=ada&search=bob")).status_code == 422


# Lookalike and reordering characters in the users service's rules


def test_a_full_width_email_or_username_is_the_same_key_as_its_ascii_twin() -> None:
    bob = full_width("bob")
    assert rules.email_address(f"{bob}@example.com") == "bob@example.com"
    assert rules.email_key(full_width("bob@example.com")) == rules.email_key("bob@example.com")
    assert rules.username(bob) == "bob"
    assert rules.username_key(full_width("BOB")) == rules.username_key("bob")
    assert rules.login_key(f" {bob}@example.com ") == rules.email_key("bob@example.com")


@pytest.mark.parametrize("control", BIDI_CONTROLS)
def test_bidi_controls_are_refused_in_names(control: str) -> None:
    for rule, value in [
        (rules.display_name, f"Ada{control}Lovelace"),
        (rules.username, f"ada{control}"),
        (rules.nickname, f"{control}Countess"),
    ]:
        with pytest.raises(FieldProblem, match="bidirectional"):
            rule(value)


# The invite text area


def test_a_quoted_display_name_keeps_its_comma() -> None:
    raw = '"Quoted, Name" <q@x.org>; ada@example.com\n"Hopper; Grace" <grace@example.com>,,bad@'
    assert split_addresses(raw) == [
        '"Quoted, Name" <q@x.org>',
        "ada@example.com",
        '"Hopper; Grace" <grace@example.com>',
        "bad@",
    ]
    parsed = parse_addresses('"Quoted, Name" <q@x.org>, ada@example.com, bad@')
    assert [(p.given, p.email, p.display_name, p.problem) for p in parsed] == [
        ('"Quoted, Name" <q@x.org>', "q@x.org", "Quoted, Name", None),
        ("ada@example.com", "ada@example.com", None, None),
        ("bad@", None, None, AddressProblem.INVALID),
    ]


def test_an_escaped_quote_in_a_display_name_is_unescaped() -> None:
    [parsed] = parse_addresses(r'"Ada \"the Countess\", L." <ada@example.com>')
    assert (parsed.email, parsed.display_name) == ("ada@example.com", 'Ada "the Countess", L.')


def test_an_unclosed_quote_splits_as_before() -> None:
    assert split_addresses('"Ada, ada@example.com, bob@example.com') == [
        '"Ada',
        "ada@example.com",
        "bob@example.com",
    ]


def test_a_full_width_address_is_a_duplicate_of_its_ascii_twin() -> None:
    parsed = parse_addresses(f"bob@example.com, {full_width('bob')}@example.com")
    assert [p.email for p in parsed] == ["bob@example.com", "bob@example.com"]
    assert [p.problem for p in parsed] == [None, AddressProblem.DUPLICATE_IN_REQUEST]


@pytest.mark.parametrize("control", BIDI_CONTROLS)
def test_a_display_name_with_bidi_controls_is_invalid(control: str) -> None:
    [parsed] = parse_addresses(f"Ev{control}il <eve@example.com>")
    assert parsed.problem is AddressProblem.INVALID
