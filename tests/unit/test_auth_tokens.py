"""Tokens checked with the public key alone, and the FastAPI dependencies built on that."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from onboarding_shared.auth import (
    AdminPrincipal,
    CurrentPrincipal,
    InvalidToken,
    TokenVerificationSettings,
    TokenVerifier,
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
    unsigned = jwt.encode({"sub": str(uuid.uuid4()), "roles": ["admin"]}, None, algorithm="none")
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
