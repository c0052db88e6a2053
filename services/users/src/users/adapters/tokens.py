"""Signing access tokens. Other services check them with the public key alone
(onboarding_shared.auth)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from onboarding_shared.auth import BrowserSession
from users.domain.model import User
from users.service_layer.ports import IssuedToken

PrivateKey = Ed25519PrivateKey | RSAPrivateKey


def load_private_key(pem: str) -> PrivateKey:
    """ValueError unless ``pem`` is an unencrypted Ed25519 or RSA private key."""
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError(
            "must be an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----), Ed25519 or RSA"
        ) from None
    if not isinstance(key, Ed25519PrivateKey | RSAPrivateKey):
        raise ValueError("only Ed25519 and RSA keys are supported")
    return key


class JwtTokenIssuer:
    def __init__(self, private_key_pem: str, *, issuer: str, audience: str, ttl: timedelta) -> None:
        self._key = load_private_key(private_key_pem)
        self._algorithm = "EdDSA" if isinstance(self._key, Ed25519PrivateKey) else "RS256"
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl

    def issue(self, user: User) -> IssuedToken:
        now = datetime.now(UTC)
        return self._signed(self._claims(user, now, now + self._ttl), now + self._ttl, now)

    def issue_session(
        self, user: User, session: BrowserSession, *, expires_at: datetime
    ) -> IssuedToken:
        now = datetime.now(UTC)
        claims = {
            **self._claims(user, now, expires_at),
            "auth_time": int(session.started_at.timestamp()),
            "csrf": session.csrf,
        }
        return self._signed(claims, expires_at, now)

    def _claims(self, user: User, now: datetime, expires_at: datetime) -> dict[str, object]:
        return {
            "sub": str(user.id),
            "roles": list(user.roles),
            "iat": now,
            "exp": expires_at,
            "iss": self._issuer,
            "aud": self._audience,
            "jti": uuid.uuid4().hex,
        }

    def _signed(
        self, claims: dict[str, object], expires_at: datetime, now: datetime
    ) -> IssuedToken:
        token = jwt.encode(claims, self._key, algorithm=self._algorithm)
        return IssuedToken(access_token=token, expires_in=int((expires_at - now).total_seconds()))
