"""What the users service knows of invitations: a grant to create one account, learnt from the
invitations service's events. Only the hash of the link's token is ever held.

A grant is open until it is used (an account was made with it) or revoked. Used and revoked are
final. A new request for the same invitation (a resend after expiry) brings a new token and a
new expiry, replacing the old ones; a request older than what is held changes nothing. A
revocation that arrives before its request is remembered, so the late request cannot reopen it.

A grant carries the roles of the account it creates, whoever holds the link. The invitations
service decided who may hand them out; this service still checks them against the roles it
knows before making an account, so a role it does not know makes the link unusable.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from users.domain import rules
from users.domain.rules import USER_ROLE, FieldProblem

# What joining gave before invitations carried roles, and what a grant holds until it knows.
DEFAULT_ROLES: tuple[str, ...] = (USER_ROLE,)


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
    # The invitation gives a role this service does not know (a newer invitations service?):
    # no account is made with roles nobody can check.
    UNKNOWN_ROLE = "unknown_role"


@dataclass(eq=False)
class InvitationGrant:
    invitation_id: uuid.UUID
    token_hash: str
    state: GrantState
    # Unknown while only a revocation has arrived.
    email: str | None = None
    expires_at: datetime | None = None
    # The roles of the account made with this grant, as the invitation gave them.
    roles: tuple[str, ...] = DEFAULT_ROLES

    @classmethod
    def requested(
        cls,
        invitation_id: uuid.UUID,
        *,
        email: str,
        token_hash: str,
        expires_at: datetime,
        roles: Iterable[str],
    ) -> InvitationGrant:
        return cls(invitation_id, token_hash, GrantState.OPEN, email, expires_at, tuple(roles))

    @classmethod
    def revoked_early(cls, invitation_id: uuid.UUID, *, token_hash: str) -> InvitationGrant:
        """A revocation seen before its request: remembered so the request cannot reopen it."""
        return cls(invitation_id, token_hash, GrantState.REVOKED)

    def request_again(
        self, *, email: str, token_hash: str, expires_at: datetime, roles: Iterable[str]
    ) -> bool:
        """Apply a (re)sent InvitationIssued; True if anything changed."""
        if self.state is GrantState.USED:
            return False
        if self.state is GrantState.REVOKED:
            if self.email is not None:
                return False
            # The request that the early revocation was waiting for: learn what it says, though
            # the link stays closed.
            self.email, self.expires_at, self.roles = email, expires_at, tuple(roles)
            return True
        if self.expires_at is not None and expires_at < self.expires_at:
            return False  # an older request arriving late
        request = (email, token_hash, expires_at, tuple(roles))
        changed = (self.email, self.token_hash, self.expires_at, self.roles) != request
        self.email, self.token_hash, self.expires_at, self.roles = request
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
        if not self._roles_known():
            return LinkProblem.UNKNOWN_ROLE
        return None

    def _roles_known(self) -> bool:
        """Whether every role is one this service knows (and there is at least one)."""
        try:
            rules.roles(self.roles)
        except FieldProblem:
            return False
        return True

    def use(self, now: datetime) -> None:
        """Spend the grant; a link works once."""
        if (problem := self.problem(now)) is not None:
            raise ValueError(f"this grant cannot be used: {problem}")
        self.state = GrantState.USED
