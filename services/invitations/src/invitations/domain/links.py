"""Reusable invite links: one URL that creates up to a number of accounts, until it expires
(or never, where the workspace allows it), for addresses at one domain if asked.

Like an invitation's, the token is an HMAC of a random salt: the database keeps the salt and
the token's hash, so a copy of the database alone opens nothing, yet an admin can copy the URL
again later. Regenerating draws a new salt: the old URL stops working. The users service owns
redemptions (it creates the accounts and enforces the cap under concurrency); this service
counts them from UserCreated, to show them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from invitations.domain.model import InvitationError, TokenMinter, hash_token
from onboarding_shared.contract import Role, default_roles

MAX_LINK_USES = 10_000
# A host name: labels of letters, digits and hyphens, at least one dot (RFC 1123).
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class InvalidLink(ValueError):
    """Settings a link cannot have; the message says which."""


class LinkStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"  # derived from expires_at; never stored
    USED_UP = "used_up"  # derived from uses; never stored
    REVOKED = "revoked"


def allowed_domain(value: str | None) -> str | None:
    """``example.com`` (or ``@example.com``), lower-cased; None for no restriction."""
    if value is None or not value.strip():
        return None
    domain = value.strip().lstrip("@").lower()
    if not _DOMAIN.match(domain):
        raise InvalidLink(f"{value!r} is not an email domain like example.com")
    return domain


def link_uses(value: int) -> int:
    if not 1 <= value <= MAX_LINK_USES:
        raise InvalidLink(f"max_uses must be between 1 and {MAX_LINK_USES}")
    return value


@dataclass(eq=False)
class InviteLink:
    id: uuid.UUID
    token_salt: str
    token_hash: str
    created_at: datetime
    max_uses: int
    expires_at: datetime | None = None  # None: never
    allowed_domain: str | None = None
    roles: list[Role] = field(default_factory=default_roles)
    created_by: uuid.UUID | None = None
    creator_name: str | None = None
    uses: int = 0
    regenerated_at: datetime | None = None
    revoked_at: datetime | None = None

    @classmethod
    def create(
        cls,
        *,
        now: datetime,
        minter: TokenMinter,
        max_uses: int,
        valid_for: timedelta | None,
        allowed_domain: str | None,
        roles: Iterable[Role],
        created_by: uuid.UUID | None = None,
        creator_name: str | None = None,
    ) -> InviteLink:
        salt = minter.new_salt()
        return cls(
            id=uuid.uuid4(),
            token_salt=salt,
            token_hash=hash_token(minter.token(salt)),
            created_at=now,
            max_uses=link_uses(max_uses),
            expires_at=now + valid_for if valid_for is not None else None,
            allowed_domain=allowed_domain,
            roles=list(roles),
            created_by=created_by,
            creator_name=creator_name,
        )

    def status_at(self, now: datetime) -> LinkStatus:
        if self.revoked_at is not None:
            return LinkStatus.REVOKED
        if self.uses >= self.max_uses:
            return LinkStatus.USED_UP
        if self.expires_at is not None and now >= self.expires_at:
            return LinkStatus.EXPIRED
        return LinkStatus.ACTIVE

    def regenerate(self, *, now: datetime, minter: TokenMinter) -> None:
        """A new URL; the old one stops working. Uses, expiry and limits stay."""
        if self.revoked_at is not None:
            raise InvitationError("a revoked link cannot be regenerated; create a new one")
        self.token_salt = minter.new_salt()
        self.token_hash = hash_token(minter.token(self.token_salt))
        self.regenerated_at = now

    def revoke(self, *, now: datetime) -> bool:
        """False when it was revoked already (nothing to do)."""
        if self.revoked_at is not None:
            return False
        self.revoked_at = now
        return True

    def record_use(self) -> None:
        """An account was created through it (counted here from UserCreated, to show it)."""
        self.uses += 1
