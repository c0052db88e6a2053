"""What the use cases need from the outside world, besides the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from onboarding_shared.auth import BrowserSession
from users.domain.model import User


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """False for a wrong password, and for no hash at all (an unknown account), after
        spending about the same time, so the answer's delay tells nothing."""


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int  # seconds


class TokenIssuer(Protocol):
    def issue(self, user: User) -> IssuedToken: ...

    def issue_session(
        self, user: User, session: BrowserSession, *, expires_at: datetime
    ) -> IssuedToken:
        """The token a browser keeps in its session cookie: the access token's claims, plus
        the session's start and CSRF token."""


@dataclass(frozen=True)
class ProcessedImage:
    content: bytes
    media_type: str


class AvatarProcessor(Protocol):
    async def normalise(self, data: bytes) -> ProcessedImage:
        """A square re-encoded copy without metadata, or AvatarRejected saying why not."""


class SmtpStatusSource(Protocol):
    def smtp_configured(self) -> bool | None:
        """Whether the mailer can send now; None when nothing recent is known."""
