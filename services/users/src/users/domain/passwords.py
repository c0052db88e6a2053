"""The minimum password policy, random passwords and single-use link tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from users.domain.rules import FieldProblem

MAX_PASSWORD_LENGTH = 256  # hashing cost grows with length: bound it
TOKEN_BYTES = 32  # 256 random bits
RANDOM_PASSWORD_BYTES = 24

# Values people leave in place of a real password (and that configuration templates suggest).
_PLACEHOLDERS = frozenset(
    {
        "password",
        "password1",
        "password123",
        "changeme",
        "change-me",
        "change_me",
        "changeit",
        "admin",
        "administrator",
        "secret",
        "letmein",
        "qwertyuiop",
        "1234567890",
        "0123456789",
        "12345678901",
        "123456789012",
    }
)


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 10

    def check(self, password: str, *, username: str = "", email: str = "") -> str:
        """The password unchanged, or FieldProblem saying which rule it breaks."""
        if len(password) < self.min_length:
            raise FieldProblem(f"must be at least {self.min_length} characters")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise FieldProblem(f"must be at most {MAX_PASSWORD_LENGTH} characters")
        if not password.strip():
            raise FieldProblem("must not be only spaces")
        lowered = password.lower()
        if lowered in _PLACEHOLDERS or len(set(password)) < 3:
            raise FieldProblem("is too easy to guess")
        if lowered in {username.lower(), email.lower()} - {""}:
            raise FieldProblem("must differ from the username and the email")
        return password


def random_password() -> str:
    """Nobody ever sees it: the user sets their own through a link."""
    return secrets.token_urlsafe(RANDOM_PASSWORD_BYTES)


def new_link_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_link_token(token: str) -> str:
    """Only this hash is stored: a leaked database does not leak working links."""
    return hashlib.sha256(token.encode()).hexdigest()
