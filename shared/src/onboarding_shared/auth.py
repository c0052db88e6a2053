"""Checking access tokens in any service, with the issuer's public key only: no call to the
users service. Plumbing, like the messaging kit: who gets which role is decided elsewhere.

Tokens are JWTs signed with Ed25519 (EdDSA) or RSA (RS256) and carry sub (the user id),
roles, iat, exp, iss and aud.

A browser holds its token in an HttpOnly cookie instead (a *session*: the same JWT with
``auth_time`` and a ``csrf`` claim). A request authenticated by that cookie that changes
anything must repeat the ``csrf`` claim in the ``X-CSRF-Token`` header: another site can make
the browser send the cookie, but cannot read the page that holds the claim.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from onboarding_shared.correlation import use_actor

ADMIN_ROLE = "admin"
DEFAULT_ISSUER = "onboarding-users"
DEFAULT_AUDIENCE = "onboarding"
MIN_RSA_BITS = 2048
_PEM_BLOCK_END = "-----END PUBLIC KEY-----"
SESSION_COOKIE = "onboarding_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

PublicKey = Ed25519PublicKey | RSAPublicKey


class InvalidToken(Exception):
    """Missing, malformed, expired, tampered with, or meant for someone else."""


@dataclass(frozen=True)
class BrowserSession:
    """What a session token adds: when its owner signed in, and the token that proves a
    request comes from our own pages."""

    started_at: datetime
    csrf: str


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    user_id: uuid.UUID
    roles: frozenset[str]
    session: BrowserSession | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


def algorithm_for(key: PublicKey) -> str:
    return "EdDSA" if isinstance(key, Ed25519PublicKey) else "RS256"


def load_public_keys(pem: str) -> list[PublicKey]:
    """Every public key in ``pem`` (several blocks allow a key rotation); ValueError otherwise."""
    blocks = [block for block in pem.split(_PEM_BLOCK_END) if block.strip()]
    if not blocks:
        raise ValueError("no PEM public key found")
    keys: list[PublicKey] = []
    for block in blocks:
        try:
            key = load_pem_public_key((block.strip() + "\n" + _PEM_BLOCK_END + "\n").encode())
        except (ValueError, TypeError):
            raise ValueError(
                "must be a PEM public key (-----BEGIN PUBLIC KEY-----), Ed25519 or RSA"
            ) from None
        if isinstance(key, RSAPublicKey) and key.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA keys need at least {MIN_RSA_BITS} bits")
        if not isinstance(key, Ed25519PublicKey | RSAPublicKey):
            raise ValueError("only Ed25519 and RSA keys are supported")
        keys.append(key)
    return keys


def pem_from_environment(value: object) -> object:
    """Environment variables often carry PEM text with literal \\n: accept both forms."""
    return value.replace("\\n", "\n").strip() if isinstance(value, str) else value


def _check_public_key_pem(value: str) -> str:
    load_public_keys(value)
    return value


PublicKeyPem = Annotated[
    str, BeforeValidator(pem_from_environment), AfterValidator(_check_public_key_pem)
]


class TokenVerifier:
    def __init__(
        self,
        public_keys_pem: str,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        leeway_seconds: float = 30.0,
    ) -> None:
        self._keys = load_public_keys(public_keys_pem)
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds

    def verify(self, token: str) -> Principal:
        claims = self._claims(token)
        try:
            user_id = uuid.UUID(str(claims["sub"]))
            roles = claims["roles"]
        except (KeyError, ValueError):
            raise InvalidToken("token without a valid subject or roles") from None
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise InvalidToken("roles must be a list of strings")
        return Principal(user_id=user_id, roles=frozenset(roles), session=_session_of(claims))

    def _claims(self, token: str) -> dict[str, Any]:
        for key in self._keys:
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=[algorithm_for(key)],  # never the algorithm the token names
                    audience=self._audience,
                    issuer=self._issuer,
                    leeway=self._leeway,
                    options={"require": ["sub", "exp", "iat", "iss", "aud"]},
                )
            except jwt.InvalidSignatureError:
                continue  # maybe signed with another of the configured keys
            except jwt.PyJWTError as error:
                raise InvalidToken(type(error).__name__) from None
            return claims
        raise InvalidToken("signature does not match any configured key")


def _session_of(claims: dict[str, Any]) -> BrowserSession | None:
    csrf, auth_time = claims.get("csrf"), claims.get("auth_time")
    if csrf is None:
        return None
    if not isinstance(csrf, str) or len(csrf) < 16 or type(auth_time) is not int:
        raise InvalidToken("malformed session claims")
    return BrowserSession(started_at=datetime.fromtimestamp(auth_time, UTC), csrf=csrf)


class TokenVerificationSettings(BaseModel):
    """Settings mixin of every service with protected routes: AUTH_PUBLIC_KEY is required
    and checked at start, so a missing or placeholder key stops the service."""

    auth_public_key: PublicKeyPem = Field(
        description="PEM public key(s) of the token issuer (the users service)."
    )
    auth_issuer: str = Field(default=DEFAULT_ISSUER, min_length=1, max_length=200)
    auth_audience: str = Field(default=DEFAULT_AUDIENCE, min_length=1, max_length=200)

    def token_verifier(self) -> TokenVerifier:
        return TokenVerifier(
            self.auth_public_key, issuer=self.auth_issuer, audience=self.auth_audience
        )


_bearer = HTTPBearer(auto_error=False, description="An access token from POST /api/v1/auth/login")


def _verifier(request: Request) -> TokenVerifier:
    verifier = getattr(request.app.state, "token_verifier", None)
    if not isinstance(verifier, TokenVerifier):
        raise RuntimeError("this app has no token verifier: its settings need AUTH_PUBLIC_KEY")
    return verifier


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """401 without a valid bearer token or session cookie; 403 for a change asked with the
    cookie but without its CSRF token. The events the request causes name the principal
    (async, so that it runs in the request's own context rather than a worker thread's)."""
    principal = _authenticated(request, credentials)
    use_actor(principal.user_id)
    return principal


def _authenticated(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is not None:
        return _verified(request, credentials.credentials)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise _unauthorized("authentication required", "Bearer")
    principal = _verified(request, cookie)
    if principal.session is None:
        raise _unauthorized("invalid or expired token", 'Bearer error="invalid_token"')
    given = request.headers.get(CSRF_HEADER, "")
    if request.method not in _SAFE_METHODS and not csrf_matches(principal, given):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
    return principal


def csrf_matches(principal: Principal, given: str) -> bool:
    """Whether ``given`` is the CSRF token of the principal's session (in constant time)."""
    expected = principal.session.csrf if principal.session else ""
    return bool(given and expected) and hmac.compare_digest(given.encode(), expected.encode())


def _verified(request: Request, token: str) -> Principal:
    try:
        return _verifier(request).verify(token)
    except InvalidToken:
        raise _unauthorized("invalid or expired token", 'Bearer error="invalid_token"') from None


def _unauthorized(detail: str, challenge: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": challenge}
    )


def require_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """401 without a valid token, 403 when it lacks the admin role."""
    if not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin role required")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(require_admin)]
