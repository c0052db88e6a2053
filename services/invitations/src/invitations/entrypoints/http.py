"""HTTP routes: validate, call the service layer, shape the answer. Nothing else."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from invitations.domain.model import Invitation, InvitationStatus
from invitations.service_layer import services
from invitations.service_layer.services import InviteOutcome
from invitations.wiring import InvitationsContext
from onboarding_shared.auth import require_admin

# Every route here is for admins: 401 without a valid token, 403 without the admin role.
router = APIRouter(
    prefix="/api/v1/invitations", tags=["invitations"], dependencies=[Depends(require_admin)]
)

MAX_EMAILS_TEXT = 200_000
MAX_LIST_ITEMS = 5_000


def _context(request: Request) -> InvitationsContext:
    context: InvitationsContext = request.app.state.context
    return context


Context = Annotated[InvitationsContext, Depends(_context)]


class InviteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    emails: (
        Annotated[str, Field(max_length=MAX_EMAILS_TEXT)]
        | Annotated[list[Annotated[str, Field(max_length=1000)]], Field(max_length=MAX_LIST_ITEMS)]
    ) = Field(
        description="Addresses separated by commas, semicolons, spaces or line breaks "
        "(`Name <address>` accepted), or a JSON list of addresses.",
        examples=["a@example.com, b@example.com\nc@example.com"],
    )


class InviteResultOut(BaseModel):
    input: str
    outcome: InviteOutcome
    email: str | None = None
    invitation_id: uuid.UUID | None = None
    reason: str | None = None


class InviteResponse(BaseModel):
    queued: int
    results: list[InviteResultOut]


class InvitationOut(BaseModel):
    id: uuid.UUID
    email: str
    status: InvitationStatus
    created_at: datetime
    expires_at: datetime
    sent_at: datetime | None
    attempts: int
    last_error: str | None

    @classmethod
    def of(cls, invitation: Invitation, now: datetime) -> InvitationOut:
        return cls(
            id=invitation.id,
            email=invitation.email,
            status=invitation.status_at(now),
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
            sent_at=invitation.sent_at,
            attempts=invitation.attempts,
            last_error=invitation.last_error,
        )


class InvitationList(BaseModel):
    items: list[InvitationOut]
    total: int
    limit: int
    offset: int


@router.post("", status_code=status.HTTP_202_ACCEPTED)
async def create_invitations(body: InviteRequest, context: Context) -> InviteResponse:
    """Invite every valid address; the emails go out asynchronously."""
    results = await services.invite(
        context.uow(), body.emails, policy=context.invite_policy, now=datetime.now(UTC)
    )
    return InviteResponse(
        queued=sum(1 for r in results if r.outcome is InviteOutcome.QUEUED),
        results=[InviteResultOut.model_validate(r, from_attributes=True) for r in results],
    )


@router.get("")
async def list_invitations(
    context: Context,
    status: InvitationStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> InvitationList:
    page = await services.list_invitations(context.uow(), status=status, limit=limit, offset=offset)
    now = datetime.now(UTC)
    return InvitationList(
        items=[InvitationOut.of(item, now) for item in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
    )
