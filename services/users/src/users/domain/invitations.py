"""What the users service knows of invitations: a grant to create one account, learnt from the
invitations service's events. Only the hash of the link's token is ever held.

A grant is open until it is used (an account was made with it) or revoked. Used and revoked are
final. A new request for the same invitation (a resend after expiry) brings a new token and a
new expiry, replacing the old ones; a request older than what is held changes nothing. A
revocation that arrives before its request is remembered, so the late request cannot reopen it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class GrantState(StrEnum):
    OPEN = "open"
    REVOKED = "revoked"
    USED = "used"


class LinkProblem(StrEnum):
    """Why a join link cannot be used."""

    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(eq=False)
class InvitationGrant:
    invitation_id: uuid.UUID
    token_hash: str
    state: GrantState
    # Unknown while only a revocation has arrived.
    email: str | None = None
    expires_at: datetime | None = None

    @classmethod
    def requested(
        cls, invitation_id: uuid.UUID, *, email: str, token_hash: str, expires_at: datetime
    ) -> InvitationGrant:
        return cls(invitation_id, token_hash, GrantState.OPEN, email, expires_at)

    @classmethod
    def revoked_early(cls, invitation_id: uuid.UUID, *, token_hash: str) -> InvitationGrant:
        """A revocation seen before its request: remembered so the request cannot reopen it."""
        return cls(invitation_id, token_hash, GrantState.REVOKED)

    def request_again(self, *, email: str, token_hash: str, expires_at: datetime) -> bool:
        """Apply a (re)sent InvitationRequested; True if anything changed."""
        if self.state is GrantState.USED:
            return False
        if self.state is GrantState.REVOKED:
            if self.email is not None:
                return False
            # The request that the early revocation was waiting for: learn the address only.
            self.email, self.expires_at = email, expires_at
            return True
        if self.expires_at is not None and expires_at < self.expires_at:
            return False  # an older request arriving late
        changed = (self.email, self.token_hash, self.expires_at) != (email, token_hash, expires_at)
        self.email, self.token_hash, self.expires_at = email, token_hash, expires_at
        return changed

    def revoke(self) -> bool:
        """True if this closed the grant; a used grant stays used."""
        if self.state is not GrantState.OPEN:
            return False
        self.state = GrantState.REVOKED
        return True

    def problem(self, now: datetime) -> LinkProblem | None:
        """None when an account may be created with this grant now."""
        if self.state is GrantState.USED:
            return LinkProblem.USED
        if self.state is GrantState.REVOKED or self.email is None:
            return LinkProblem.REVOKED
        if self.expires_at is None or now >= self.expires_at:
            return LinkProblem.EXPIRED
        return None

    def use(self, now: datetime) -> None:
        """Spend the grant; a link works once."""
        if (problem := self.problem(now)) is not None:
            raise ValueError(f"this grant cannot be used: {problem}")
        self.state = GrantState.USED
