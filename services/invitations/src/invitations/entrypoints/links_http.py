"""HTTP routes of reusable invite links: create, list, regenerate, revoke."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import AliasPath, BaseModel, ConfigDict, Field

from invitations.domain.links import MAX_LINK_USES, LinkStatus
from invitations.entrypoints.http import AsOfNow, Context, answered_errors, attributes_of
from invitations.service_layer import links
from invitations.service_layer.links import IssuedLink, LinkCommand
from onboarding_shared.auth import AdminPrincipal, require_admin
from onboarding_shared.contract import Role, default_roles

router = APIRouter(
    prefix="/api/v1/invitations/links",
    tags=["invite links"],
    dependencies=[Depends(require_admin)],
)


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_uses: int = Field(ge=1, le=MAX_LINK_USES, description="Accounts it may create, in all.")
    expires_in_hours: int | None = Field(
        default=None,
        description="Within the limits the service is configured with; the default validity "
        "when absent.",
    )
    never_expires: bool = Field(
        default=False, description="No expiry at all, where the workspace allows it."
    )
    allowed_domain: str | None = Field(
        default=None,
        max_length=254,
        description="Only addresses at this domain may join, e.g. `example.com`.",
    )
    roles: list[Role] = Field(
        default_factory=default_roles,
        min_length=1,
        description="What the accounts created through it get. Only an admin may hand out admin.",
    )


class LinkOut(BaseModel):
    # Validated from an IssuedLink: its link's attributes, and its URL.
    model_config = attributes_of("link")

    id: uuid.UUID
    url: str = Field(
        validation_alias="url",
        description="The link to share. Anyone holding it may join: keep it close.",
    )
    status: Annotated[LinkStatus, AsOfNow] = Field(validation_alias=AliasPath("link", "status_at"))
    uses: int = Field(description="Accounts created through it so far.")
    max_uses: int
    expires_at: datetime | None = Field(description="null: never.")
    allowed_domain: str | None
    roles: list[str]
    created_at: datetime
    created_by: uuid.UUID | None
    creator_name: str | None
    regenerated_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, issued: IssuedLink, now: datetime) -> LinkOut:
        """As it stands at `now` (used up, expired...)."""
        return cls.model_validate(issued, context={"now": now})


class LinkList(BaseModel):
    items: list[LinkOut]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        403: {"description": "A role the creator may not hand out"},
        422: {"description": "Settings a link cannot have"},
    },
)
async def create_link(body: LinkRequest, context: Context, admin: AdminPrincipal) -> LinkOut:
    command = LinkCommand(
        max_uses=body.max_uses,
        never_expires=body.never_expires,
        expires_in_hours=body.expires_in_hours,
        allowed_domain=body.allowed_domain,
        roles=tuple(body.roles),
        creator_id=admin.user_id,
        creator_is_admin=admin.is_admin,
    )
    now = datetime.now(UTC)
    with answered_errors():
        issued = await links.create_link(
            context.uow(), command, policy=context.invite_policy, minter=context.minter, now=now
        )
    return LinkOut.of(issued, now)


@router.get("")
async def list_links(context: Context) -> LinkList:
    """Newest first, revoked ones too."""
    now = datetime.now(UTC)
    issued = await links.list_links(
        context.uow(), policy=context.invite_policy, minter=context.minter
    )
    return LinkList(items=[LinkOut.of(link, now) for link in issued])


@router.post(
    "/{link_id}/regenerate",
    responses={404: {"description": "No such link"}, 409: {"description": "Revoked"}},
)
async def regenerate_link(link_id: uuid.UUID, context: Context) -> LinkOut:
    """A new URL; the old one stops working."""
    now = datetime.now(UTC)
    with answered_errors():
        issued = await links.regenerate_link(
            context.uow(), link_id, policy=context.invite_policy, minter=context.minter, now=now
        )
    return LinkOut.of(issued, now)


@router.delete("/{link_id}", responses={404: {"description": "No such link"}})
async def revoke_link(link_id: uuid.UUID, context: Context) -> LinkOut:
    """It creates no more accounts. Revoking twice is harmless."""
    now = datetime.now(UTC)
    with answered_errors():
        issued = await links.revoke_link(
            context.uow(), link_id, policy=context.invite_policy, minter=context.minter, now=now
        )
    return LinkOut.of(issued, now)
