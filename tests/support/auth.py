"""A key pair for the whole test run, and tokens minted with it (or with a stranger's key)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from onboarding_shared.auth import DEFAULT_AUDIENCE, DEFAULT_ISSUER


def _pem_pair(key: Ed25519PrivateKey) -> tuple[str, str]:
    private = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return private, public.decode()


PRIVATE_KEY = Ed25519PrivateKey.generate()
PRIVATE_PEM, PUBLIC_PEM = _pem_pair(PRIVATE_KEY)
STRANGER_KEY = Ed25519PrivateKey.generate()  # signs tokens nobody should accept

ADMIN = {"username": "root", "email": "root@example.com", "password": "Root-password-42"}


def verifier_settings() -> dict[str, Any]:
    """What every service with protected routes needs."""
    return {"auth_public_key": PUBLIC_PEM}


def issuer_settings(**admin: str) -> dict[str, Any]:
    """What the users service needs: both keys, and the first admin's account."""
    seed = {**ADMIN, **admin}
    return {
        "auth_private_key": PRIVATE_PEM,
        "auth_public_key": PUBLIC_PEM,
        "admin_username": seed["username"],
        "admin_email": seed["email"],
        "admin_password": seed["password"],
    }


def environment() -> dict[str, str]:
    """The same, as a process's environment variables."""
    return {
        "AUTH_PRIVATE_KEY": PRIVATE_PEM,
        "AUTH_PUBLIC_KEY": PUBLIC_PEM,
        "ADMIN_USERNAME": ADMIN["username"],
        "ADMIN_EMAIL": ADMIN["email"],
        "ADMIN_PASSWORD": ADMIN["password"],
    }


def mint_token(
    *,
    roles: tuple[str, ...] | str = ("admin",),  # a str makes a malformed claim
    user_id: uuid.UUID | None = None,
    # Long enough for tokens minted at import (module constants, parameters) to outlive the run.
    expires_in: timedelta = timedelta(hours=6),
    key: Ed25519PrivateKey = PRIVATE_KEY,
    **overrides: Any,
) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id or uuid.uuid4()),
        "roles": roles if isinstance(roles, str) else list(roles),
        "iat": now,
        "exp": now + expires_in,
        "iss": DEFAULT_ISSUER,
        "aud": DEFAULT_AUDIENCE,
        **overrides,
    }
    return jwt.encode(claims, key, algorithm="EdDSA")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_headers() -> dict[str, str]:
    return bearer(mint_token())
