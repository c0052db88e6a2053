"""Tokens checked with the public key alone, and the FastAPI dependencies built on that,
with a bearer token or a browser session's cookie (and its CSRF token)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from onboarding_shared.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    AdminPrincipal,
    BrowserSession,
    CurrentPrincipal,
    InvalidToken,
    TokenVerificationSettings,
    TokenVerifier,
    csrf_matches,
)
from tests.support.auth import PUBLIC_PEM, STRANGER_KEY, _pem_pair, bearer, mint_token


def verifier() -> TokenVerifier:
    return TokenVerifier(PUBLIC_PEM)


def test_a_valid_token_names_its_user_and_roles() -> None:
    user_id = uuid.uuid4()
    principal = verifier().verify(mint_token(user_id=user_id, roles=("admin", "user")))
    assert principal.user_id == user_id
    assert principal.is_admin


@pytest.mark.parametrize(
    "token",
    [
        mint_token(expires_in=timedelta(minutes=-5)),
        mint_token(key=STRANGER_KEY),
        mint_token(aud="another-system"),
        mint_token(iss="someone-else"),
        mint_token(sub="not-a-uuid"),
        mint_token(roles="admin"),
        "not.a.token",
        "",
    ],
    ids=["expired", "foreign-key", "audience", "issuer", "subject", "roles", "garbage", "empty"],
)
def test_invalid_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        verifier().verify(token)


def test_a_tampered_token_is_refused() -> None:
    header, payload, signature = mint_token(roles=("user",)).split(".")
    forged = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(b'"user"', b'"admin"')
    ).decode()
    with pytest.raises(InvalidToken):
        verifier().verify(f"{header}.{forged}.{signature}")


def test_an_unsigned_token_is_refused() -> None:
    unsigned = jwt.encode({"sub": str(uuid.uuid4()), "roles": ["admin"]}, "", algorithm="none")
    with pytest.raises(InvalidToken):
        verifier().verify(unsigned)


def test_several_public_keys_allow_a_rotation() -> None:
    _old_private, old_public = _pem_pair(STRANGER_KEY)
    both = TokenVerifier(old_public + PUBLIC_PEM)
    assert both.verify(mint_token()).is_admin
    assert both.verify(mint_token(key=STRANGER_KEY)).is_admin


def test_rsa_keys_work_too() -> None:
    key = generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    token = jwt.encode(
        {**jwt.decode(mint_token(), options={"verify_signature": False})}, key, algorithm="RS256"
    )
    assert TokenVerifier(public.decode()).verify(token).is_admin


class _Settings(TokenVerificationSettings):
    pass


@pytest.mark.parametrize("value", ["", "change-me", "-----BEGIN PUBLIC KEY-----\nxx\n"])
def test_settings_refuse_a_missing_or_placeholder_key(value: str) -> None:
    with pytest.raises(ValidationError, match="auth_public_key"):
        _Settings(auth_public_key=value)


def test_settings_accept_a_key_with_escaped_line_breaks() -> None:
    assert _Settings(auth_public_key=PUBLIC_PEM.replace("\n", "\\n")).token_verifier()


class Who(BaseModel):
    user_id: uuid.UUID
    admin: bool


def app() -> FastAPI:
    application = FastAPI()
    application.state.token_verifier = verifier()

    @application.get("/anyone")
    async def anyone(principal: CurrentPrincipal) -> Who:
        return Who(user_id=principal.user_id, admin=principal.is_admin)

    @application.get("/admins")
    async def admins(principal: AdminPrincipal) -> Who:
        return Who(user_id=principal.user_id, admin=principal.is_admin)

    return application


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        ("/admins", {}, 401),
        ("/admins", {"Authorization": "Basic YTpi"}, 401),
        ("/admins", bearer("nonsense"), 401),
        ("/admins", bearer(mint_token(expires_in=timedelta(seconds=-60))), 401),
        ("/admins", bearer(mint_token(roles=("user",))), 403),
        ("/admins", bearer(mint_token()), 200),
        ("/anyone", bearer(mint_token(roles=("user",))), 200),
        ("/anyone", {}, 401),
    ],
)
async def test_the_dependencies_answer_401_403_or_let_through(
    path: str, headers: dict[str, str], expected: int
) -> None:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(path, headers=headers)
    assert response.status_code == expected
    if expected == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


# Browser sessions: the token in a cookie, and the CSRF token that must come with changes

CSRF = "k" * 43
SIGNED_IN_AT = int(datetime.now(UTC).timestamp()) - 60


def session_token(**overrides: Any) -> str:
    claims: dict[str, Any] = {"auth_time": SIGNED_IN_AT, "csrf": CSRF, **overrides}
    return mint_token(**{name: value for name, value in claims.items() if value is not None})


def session_app() -> FastAPI:
    application = FastAPI()
    application.state.token_verifier = verifier()

    @application.api_route("/things", methods=["GET", "HEAD", "OPTIONS", "POST", "PATCH", "DELETE"])
    async def things(principal: CurrentPrincipal) -> Who:
        return Who(user_id=principal.user_id, admin=principal.is_admin)

    return application


async def call(
    method: str, cookie: str | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    transport = httpx.ASGITransport(app=session_app())
    cookies = {SESSION_COOKIE: cookie} if cookie is not None else {}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", cookies=cookies
    ) as client:
        return await client.request(method, "/things", headers=headers or {})


def test_a_session_token_names_when_its_session_started_and_its_csrf_token() -> None:
    principal = verifier().verify(session_token())
    assert principal.session == BrowserSession(
        started_at=datetime.fromtimestamp(SIGNED_IN_AT, UTC), csrf=CSRF
    )
    assert verifier().verify(mint_token()).session is None


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
async def test_the_cookie_alone_is_enough_to_read(method: str) -> None:
    assert (await call(method, session_token())).status_code == 200


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "given", [None, "", "wrong-" + CSRF[6:], CSRF + "x", CSRF.upper()], ids=str
)
async def test_a_change_with_the_cookie_needs_its_csrf_token(
    method: str, given: str | None
) -> None:
    headers = {} if given is None else {CSRF_HEADER: given}
    response = await call(method, session_token(), headers)
    assert response.status_code == 403
    assert response.json() == {"detail": "missing or wrong CSRF token"}


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
async def test_a_change_with_the_cookie_and_its_csrf_token_goes_through(method: str) -> None:
    response = await call(method, session_token(), {CSRF_HEADER: CSRF})
    assert response.status_code == 200, response.text


async def test_a_bearer_token_needs_no_csrf_token_and_wins_over_the_cookie() -> None:
    user_id = uuid.uuid4()
    token = mint_token(user_id=user_id, roles=("user",))
    response = await call("POST", headers=bearer(token))
    assert response.status_code == 200
    # A session token sent as a bearer token is not a cookie another site could make us send.
    assert (await call("POST", headers=bearer(session_token()))).status_code == 200
    response = await call("POST", cookie=session_token(), headers=bearer(token))
    assert (response.status_code, response.json()["user_id"]) == (200, str(user_id))
    response = await call("GET", cookie=session_token(), headers=bearer("nonsense"))
    assert response.status_code == 401


@pytest.mark.parametrize(
    "cookie",
    [
        mint_token(),  # an API token is no session
        session_token(csrf="too-short"),
        session_token(csrf=12345678901234567890),
        session_token(auth_time=None),
        session_token(auth_time="yesterday"),
        session_token(auth_time=1.5),
        session_token(expires_in=timedelta(minutes=-5)),
        session_token(key=STRANGER_KEY),
        "not.a.token",
    ],
    ids=[
        "not-a-session",
        "short-csrf",
        "numeric-csrf",
        "no-auth-time",
        "text-auth-time",
        "fractional-auth-time",
        "expired",
        "foreign-key",
        "garbage",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_cookie_without_a_valid_session_is_refused(cookie: str, method: str) -> None:
    response = await call(method, cookie, {CSRF_HEADER: CSRF})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_an_empty_cookie_is_no_credential() -> None:
    response = await call("GET", "")
    assert (response.status_code, response.json()["detail"]) == (401, "authentication required")


def test_csrf_matches_only_the_sessions_own_token() -> None:
    principal = verifier().verify(session_token())
    assert csrf_matches(principal, CSRF)
    assert not csrf_matches(principal, "")
    assert not csrf_matches(principal, CSRF[:-1])
    assert not csrf_matches(verifier().verify(mint_token()), "")
    assert not csrf_matches(verifier().verify(mint_token()), CSRF)
