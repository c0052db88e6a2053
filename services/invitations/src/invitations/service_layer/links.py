"""Use cases of reusable invite links: create, list, regenerate, revoke. Each change and its
public event (the token's hash, never the URL) commit together."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from invitations.domain.links import InvalidLink, InviteLink, allowed_domain
from invitations.domain.model import DEFAULT_ROLES, TokenMinter, invitation_roles
from invitations.service_layer.services import InvitePolicy, NotFound, inviter_of, ttl_hours_for
from invitations.service_layer.unit_of_work import InvitationsUnitOfWork
from onboarding_shared.contract import InviteLinkIssued, InviteLinkRevoked

MAX_LISTED_LINKS = 500


@dataclass(frozen=True)
class LinkCommand:
    max_uses: int
    never_expires: bool = False
    expires_in_hours: int | None = None  # None: the workspace's default validity
    allowed_domain: str | None = None
    roles: tuple[str, ...] = DEFAULT_ROLES
    creator_id: uuid.UUID | None = None
    creator_is_admin: bool = False


@dataclass(frozen=True)
class IssuedLink:
    """A link and its URL, which is never stored: derived from the salt each time it is shown."""

    link: InviteLink
    url: str


async def create_link(
    uow: InvitationsUnitOfWork,
    command: LinkCommand,
    *,
    policy: InvitePolicy,
    minter: TokenMinter,
    now: datetime,
) -> IssuedLink:
    """Raise InvalidLink, InvalidExpiry, InvalidRoles or RoleNotAllowed, creating nothing."""
    roles = invitation_roles(command.roles, inviter_is_admin=command.creator_is_admin)
    domain = allowed_domain(command.allowed_domain)
    async with uow:
        creator = await inviter_of(uow, command.creator_id)
        link = InviteLink.create(
            now=now,
            minter=minter,
            max_uses=command.max_uses,
            valid_for=_validity(command, policy),
            allowed_domain=domain,
            roles=roles,
            created_by=command.creator_id,
            creator_name=creator.name if creator else None,
        )
        uow.links.add(link)
        uow.emit(_issued(link, now))
        await uow.commit()
    return _with_url(link, policy, minter)


def _validity(command: LinkCommand, policy: InvitePolicy) -> timedelta | None:
    if command.never_expires:
        if not policy.links_may_never_expire:
            raise InvalidLink("this workspace does not allow links that never expire")
        if command.expires_in_hours is not None:
            raise InvalidLink("a link that never expires takes no expires_in_hours")
        return None
    return timedelta(hours=ttl_hours_for(command.expires_in_hours, policy))


async def list_links(
    uow: InvitationsUnitOfWork, *, policy: InvitePolicy, minter: TokenMinter
) -> list[IssuedLink]:
    async with uow:
        links = await uow.links.newest_first(MAX_LISTED_LINKS)
    return [_with_url(link, policy, minter) for link in links]


async def regenerate_link(
    uow: InvitationsUnitOfWork,
    link_id: uuid.UUID,
    *,
    policy: InvitePolicy,
    minter: TokenMinter,
    now: datetime,
) -> IssuedLink:
    """A new URL for the same link; the old URL stops working once the users service hears."""
    async with uow:
        link = await _existing(uow, link_id)
        link.regenerate(now=now, minter=minter)
        uow.emit(_issued(link, now))
        await uow.commit()
    return _with_url(link, policy, minter)


async def revoke_link(
    uow: InvitationsUnitOfWork,
    link_id: uuid.UUID,
    *,
    policy: InvitePolicy,
    minter: TokenMinter,
    now: datetime,
) -> IssuedLink:
    """Revoking twice is harmless."""
    async with uow:
        link = await _existing(uow, link_id)
        if link.revoke(now=now):
            uow.emit(InviteLinkRevoked(link_id=link.id, revoked_at=now))
            await uow.commit()
    return _with_url(link, policy, minter)


async def _existing(uow: InvitationsUnitOfWork, link_id: uuid.UUID) -> InviteLink:
    link = await uow.links.get(link_id)
    if link is None:
        raise NotFound(f"no invite link {link_id}")
    return link


def _issued(link: InviteLink, now: datetime) -> InviteLinkIssued:
    return InviteLinkIssued(
        link_id=link.id,
        token_hash=link.token_hash,
        expires_at=link.expires_at,
        max_uses=link.max_uses,
        allowed_domain=link.allowed_domain,
        roles=list(link.roles),
        issued_at=now,
    )


def _with_url(link: InviteLink, policy: InvitePolicy, minter: TokenMinter) -> IssuedLink:
    return IssuedLink(link, f"{policy.public_url}/join/link/{minter.token(link.token_salt)}")
