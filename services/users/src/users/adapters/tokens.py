"""Signing access tokens. Other services check them with the public key alone
(onboarding_shared.auth)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

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
        claims = {
            "sub": str(user.id),
            "roles": list(user.roles),
            "iat": now,
            "exp": now + self._ttl,
            "iss": self._issuer,
            "aud": self._audience,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._key, algorithm=self._algorithm)
        return IssuedToken(access_token=token, expires_in=int(self._ttl.total_seconds()))
