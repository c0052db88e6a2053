"""What the users service knows of reusable invite links: a grant to create up to `max_uses`
accounts, learnt from the invitations service's events. Only the hash of the link's token is
ever held.

A link grant is open until it is revoked; revoked is final. A new InviteLinkIssued for the same
link (a regenerate, or new terms) replaces the token's hash, so the old URL stops working, and
its expiry, cap, domain and roles; the uses already counted stay counted. An issue older than
what is held changes nothing. A revocation that arrives before its issue is remembered, so the
late issue cannot open the link.

Unlike an invitation, a link names nobody: whoever holds it types an address, which must be at
the link's domain when it has one (compared exactly, case-insensitively: `mail.example.com` is
not `example.com`), checked at every account creation, not only when the page is shown. The
roles are checked as an invitation's are: one this service does not know makes the link
unusable.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from email_validator import EmailNotValidError, validate_email

from users.domain import rules
from users.domain.invitations import DEFAULT_ROLES, LinkProblem
from users.domain.rules import FieldProblem


class LinkGrantState(StrEnum):
    OPEN = "open"
    REVOKED = "revoked"


def domain_key(domain: str) -> str:
    """A link's domain as held and compared: trimmed and lower-cased, nothing else."""
    return domain.strip().lower()


def domains_of(address: str) -> set[str]:
    """The domain of an email address, lower-cased, in both its Unicode and ASCII (IDNA 2008)
    spellings, so a link for `xn--bcher-kva.example` takes `ada@bücher.example`. Nothing is
    folded beyond that: `straße.de` is not `strasse.de`, and `mail.example.com` is not
    `example.com`."""
    try:
        valid = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return set()  # no domain at all: no link's
    return {valid.domain.lower(), valid.ascii_domain.lower()}


@dataclass(eq=False)
class InviteLinkGrant:
    link_id: uuid.UUID
    state: LinkGrantState
    # Unknown while only a revocation has arrived.
    token_hash: str | None = None
    issued_at: datetime | None = None
    # None: the link never expires.
    expires_at: datetime | None = None
    max_uses: int = 0
    uses: int = 0
    # None: any address may join.
    allowed_domain: str | None = None
    # The roles of every account made with this link, as the invitations service gave them.
    roles: tuple[str, ...] = DEFAULT_ROLES

    @classmethod
    def issued(
        cls,
        link_id: uuid.UUID,
        *,
        token_hash: str,
        issued_at: datetime,
        expires_at: datetime | None,
        max_uses: int,
        allowed_domain: str | None,
        roles: Iterable[str],
    ) -> InviteLinkGrant:
        grant = cls(link_id, LinkGrantState.OPEN)
        grant.issue_again(
            token_hash=token_hash,
            issued_at=issued_at,
            expires_at=expires_at,
            max_uses=max_uses,
            allowed_domain=allowed_domain,
            roles=roles,
        )
        return grant

    @classmethod
    def revoked_early(cls, link_id: uuid.UUID) -> InviteLinkGrant:
        """A revocation seen before its issue: remembered so the issue cannot open the link."""
        return cls(link_id, LinkGrantState.REVOKED)

    def issue_again(
        self,
        *,
        token_hash: str,
        issued_at: datetime,
        expires_at: datetime | None,
        max_uses: int,
        allowed_domain: str | None,
        roles: Iterable[str],
    ) -> bool:
        """Apply a (re)issued InviteLinkIssued; True if anything changed. A revoked link stays
        revoked: it learns what the issue says (if it knew nothing yet), nothing more."""
        if self.issued_at is not None and issued_at <= self.issued_at:
            return False  # an older issue arriving late (or the same one again)
        if self.state is LinkGrantState.REVOKED and self.issued_at is not None:
            return False
        self.token_hash, self.issued_at, self.expires_at = token_hash, issued_at, expires_at
        self.max_uses, self.roles = max_uses, tuple(roles)
        self.allowed_domain = domain_key(allowed_domain) if allowed_domain else None
        return True

    def revoke(self) -> bool:
        """True if this closed the link."""
        if self.state is LinkGrantState.REVOKED:
            return False
        self.state = LinkGrantState.REVOKED
        return True

    def problem(self, now: datetime) -> LinkProblem | None:
        """None when an account may be created with this link now. USED means used up."""
        if self.state is LinkGrantState.REVOKED or self.issued_at is None:
            return LinkProblem.REVOKED
        if self.expires_at is not None and now >= self.expires_at:
            return LinkProblem.EXPIRED
        if self.uses >= self.max_uses:
            return LinkProblem.USED
        if not self._roles_known():
            return LinkProblem.UNKNOWN_ROLE
        return None

    def admits(self, address: str) -> bool:
        """Whether an account with this (normalised) address may be made with the link."""
        return self.allowed_domain is None or self.allowed_domain in domains_of(address)

    def check_address(self, address: str) -> str:
        """The address, or FieldProblem when the link is for another domain."""
        if not self.admits(address):
            raise FieldProblem(f"use your @{self.allowed_domain} address: this link takes no other")
        return address

    def _roles_known(self) -> bool:
        try:
            rules.roles(self.roles)
        except FieldProblem:
            return False
        return True

    def use(self, now: datetime) -> None:
        """Count one account made with the link."""
        if (problem := self.problem(now)) is not None:
            raise ValueError(f"this link cannot be used: {problem}")
        self.uses += 1
