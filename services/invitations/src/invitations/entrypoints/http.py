"""HTTP routes: validate, call the service layer, shape the answer. Nothing else."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import (
    AliasPath,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic.aliases import AliasGenerator

from invitations.context import InvitationsContext
from invitations.domain.imports import BadImportFile, ImportTooLarge
from invitations.domain.links import InvalidLink
from invitations.domain.model import (
    InvalidRoles,
    Invitation,
    InvitationError,
    InvitationStatus,
    RoleNotAllowed,
)
from invitations.entrypoints.metrics import count_invite_results
from invitations.service_layer import services
from invitations.service_layer.services import (
    DailyLimitReached,
    InvalidExpiry,
    InviteCommand,
    InviteOutcome,
    NotFound,
    NotYourInvitation,
    TooManyAddresses,
)
from invitations.service_layer.unit_of_work import InvitationQuery
from onboarding_shared.auth import AdminPrincipal, require_admin
from onboarding_shared.contract import Role, default_roles
from onboarding_shared.list_queries import ListParameters, Page
from onboarding_shared.runtime import service_context

# Every route here is for admins: 401 without a valid token, 403 without the admin role.
router = APIRouter(
    prefix="/api/v1/invitations", tags=["invitations"], dependencies=[Depends(require_admin)]
)

MAX_EMAILS_TEXT = 200_000
MAX_LIST_ITEMS = 10_000
_CONTROL_EXCEPT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


Context = Annotated[InvitationsContext, Depends(service_context)]


class InviteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    emails: (
        Annotated[str, Field(max_length=MAX_EMAILS_TEXT)]
        | Annotated[list[Annotated[str, Field(max_length=1000)]], Field(max_length=MAX_LIST_ITEMS)]
    ) = Field(
        description="Addresses separated by commas, semicolons, spaces or line breaks "
        "(`Name <address>` accepted), or a JSON list of addresses.",
        examples=["ada@example.com, Grace Hopper <grace@example.com>\nlinus@example.com"],
    )
    message: str | None = Field(
        default=None, max_length=1000, description="Plain text shown (escaped) in the email."
    )
    expires_in_hours: int | None = Field(
        default=None, description="Within the limits the service is configured with."
    )
    roles: list[Role] = Field(
        default_factory=default_roles,
        min_length=1,
        description="What the accounts created by joining get, whoever uses the link. "
        "Only an admin may invite an admin.",
    )
    notify_inviter: bool = Field(
        default=True,
        description="Email me when someone joins through it (my own setting can turn all of "
        "those emails off: `PUT /api/v1/invitations/settings/me`).",
    )

    @field_validator("message")
    @classmethod
    def _plain_text(cls, value: str | None) -> str | None:
        return plain_text_message(value)


def plain_text_message(value: str | None) -> str | None:
    """A message for the email: plain text, blank meaning none."""
    if value is not None and _CONTROL_EXCEPT_LINES.search(value):
        raise ValueError("must be plain text: no control characters other than line breaks")
    return value.strip() or None if value is not None else None


# Answers are validated from the domain's objects (`Model.model_validate(obj)`): each field
# from the attribute of its name, unless its `validation_alias` says otherwise. The names they
# are answered with are always the fields' own.
FROM_ATTRIBUTES = ConfigDict(from_attributes=True)


def attributes_of(holder: str) -> ConfigDict:
    """Fields read from the attributes of the object's `holder` attribute (the link of an
    IssuedLink, say); a field with its own `validation_alias` reads the object itself."""
    return ConfigDict(
        from_attributes=True,
        alias_generator=AliasGenerator(validation_alias=lambda name: AliasPath(holder, name)),
    )


def _status_as_of(status_at: Callable[[datetime], Any], info: ValidationInfo) -> Any:
    if not info.context or "now" not in info.context:
        raise TypeError("a status as of now needs model_validate(..., context={'now': now})")
    return status_at(info.context["now"])


# A status that changes with time: read from the domain object's `status_at`, asked about the
# validation context's `now` (`model_validate(obj, context={"now": now})`).
AsOfNow = BeforeValidator(_status_as_of)


class InviteResultOut(BaseModel):
    model_config = FROM_ATTRIBUTES

    input: str
    outcome: InviteOutcome
    email: str | None = None
    invitation_id: uuid.UUID | None = None
    reason: str | None = None


class SmtpAware(BaseModel):
    model_config = FROM_ATTRIBUTES

    smtp_configured: bool | None = Field(
        description="What the mailer last reported; null when it has not been heard from."
    )
    warning: str | None = Field(description="Why emails may wait, when they may.")


class InviteResponse(SmtpAware):
    queued: int
    results: list[InviteResultOut]


class InvitationOut(BaseModel):
    model_config = FROM_ATTRIBUTES

    id: uuid.UUID
    email: str
    status: Annotated[InvitationStatus, AsOfNow] = Field(validation_alias="status_at")
    created_at: datetime
    expires_at: datetime
    sent_at: datetime | None
    attempts: int = Field(description="Delivery attempts of the latest email.")
    sends: int = Field(description="How many times it was emailed (1 + resends).")
    last_error: str | None = Field(
        description="The latest delivery problem: why it is retrying, or why it failed."
    )
    next_attempt_at: datetime | None = Field(
        description="While retrying: when the mailer tries again, at the latest."
    )
    inviter_id: uuid.UUID | None
    inviter_name: str | None
    message: str | None
    roles: list[str] = Field(description="What the account created by joining gets.")
    notify_inviter: bool = Field(description="Whether the inviter is emailed when it is accepted.")
    remind_at: datetime | None = Field(
        description="When its one automatic reminder goes out; null when none will."
    )
    reminded_at: datetime | None = Field(description="When the reminder went out.")
    accepted_at: datetime | None
    accepted_user_id: uuid.UUID | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, invitation: Invitation, now: datetime) -> InvitationOut:
        """As it stands at `now`: past its expiry, an unanswered invitation is expired."""
        return cls.model_validate(invitation, context={"now": now})


class ResendResponse(SmtpAware):
    invitation: InvitationOut


class InvitationList(Page[InvitationOut]):
    pass


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        403: {"description": "A role the inviter may not hand out"},
        413: {"description": "Too many addresses"},
        429: {"description": "Daily limit"},
    },
)
async def create_invitations(
    body: InviteRequest, context: Context, admin: AdminPrincipal
) -> InviteResponse:
    """Invite every valid, new address; the emails go out asynchronously."""
    command = InviteCommand(
        emails=body.emails,
        inviter_id=admin.user_id,
        message=body.message,
        expires_in_hours=body.expires_in_hours,
        roles=tuple(body.roles),
        inviter_is_admin=admin.is_admin,
        notify_inviter=body.notify_inviter,
    )
    with answered_errors():
        results = await services.invite(
            context.uow(),
            command,
            policy=context.invite_policy,
            minter=context.minter,
            now=datetime.now(UTC),
        )
    count_invite_results(results)  # invite() has committed: these results stand
    return InviteResponse(
        queued=sum(1 for r in results if r.outcome is InviteOutcome.QUEUED),
        results=results,
        **mail_report(context).model_dump(),
    )


@router.get("")
async def list_invitations(
    context: Context, window: ListParameters, status: InvitationStatus | None = None
) -> InvitationList:
    """Newest first; `search` matches part of the address (`q` is its old name)."""
    now = datetime.now(UTC)
    query = InvitationQuery(
        status=status, search=window.search, limit=window.limit, offset=window.offset
    )
    page = await services.list_invitations(context.uow(), query, now=now)
    return InvitationList(
        items=[InvitationOut.of(item, now) for item in page.items],
        total=page.total,
        limit=window.limit,
        offset=window.offset,
    )


@router.get("/mail-status")
async def mail_status(context: Context) -> SmtpAware:
    """Whether invitations can be emailed now, from the mailer's latest heartbeat: the console
    shows the warning before anything is sent."""
    return mail_report(context)


def mail_report(context: InvitationsContext) -> SmtpAware:
    """What the answers that send email say about its delivery (services.smtp_report)."""
    return SmtpAware.model_validate(services.smtp_report(context.mailer_status.snapshot()))


class InviterSettingsOut(BaseModel):
    model_config = FROM_ATTRIBUTES

    notify_on_acceptance: bool = Field(
        description="Email me when someone joins through one of my invitations."
    )


class InviterSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notify_on_acceptance: bool


@router.get("/settings/me")
async def my_settings(context: Context, admin: AdminPrincipal) -> InviterSettingsOut:
    """The calling inviter's own settings (the defaults until they change them)."""
    settings = await services.inviter_settings(context.uow(), admin.user_id)
    return InviterSettingsOut.model_validate(settings)


@router.put("/settings/me")
async def change_my_settings(
    body: InviterSettingsIn, context: Context, admin: AdminPrincipal
) -> InviterSettingsOut:
    settings = await services.change_inviter_settings(
        context.uow(), admin.user_id, notify_on_acceptance=body.notify_on_acceptance
    )
    return InviterSettingsOut.model_validate(settings)


class InvitationChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notify_inviter: bool = Field(description="Email me when someone joins through it.")


@router.patch(
    "/{invitation_id}",
    responses={
        403: {"description": "Not your invitation"},
        404: {"description": "No such invitation"},
    },
)
async def change_invitation(
    invitation_id: uuid.UUID, body: InvitationChanges, context: Context, admin: AdminPrincipal
) -> InvitationOut:
    """Only its inviter may change whether they are told of its acceptance."""
    with answered_errors():
        invitation = await services.change_acceptance_notice(
            context.uow(), invitation_id, notify_inviter=body.notify_inviter, actor_id=admin.user_id
        )
    return InvitationOut.of(invitation, datetime.now(UTC))


@router.get("/{invitation_id}", responses={404: {"description": "No such invitation"}})
async def get_invitation(invitation_id: uuid.UUID, context: Context) -> InvitationOut:
    with answered_errors():
        invitation = await services.get_invitation(context.uow(), invitation_id)
    return InvitationOut.of(invitation, datetime.now(UTC))


@router.post(
    "/{invitation_id}/resend",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        404: {"description": "No such invitation"},
        409: {"description": "Cannot be resent"},
    },
)
async def resend_invitation(invitation_id: uuid.UUID, context: Context) -> ResendResponse:
    """Same link and expiry while unexpired; an expired invitation gets a new link and expiry."""
    now = datetime.now(UTC)
    with answered_errors():
        invitation = await services.resend(
            context.uow(),
            invitation_id,
            policy=context.invite_policy,
            minter=context.minter,
            now=now,
        )
    return ResendResponse(
        invitation=InvitationOut.of(invitation, now), **mail_report(context).model_dump()
    )


@router.delete(
    "/{invitation_id}",
    responses={
        404: {"description": "No such invitation"},
        409: {"description": "Already accepted"},
    },
)
async def revoke_invitation(invitation_id: uuid.UUID, context: Context) -> InvitationOut:
    """The link stops working at once. Revoking twice is harmless."""
    now = datetime.now(UTC)
    with answered_errors():
        invitation = await services.revoke(context.uow(), invitation_id, now=now)
    return InvitationOut.of(invitation, now)


# What each refusal of the service layer answers, in one table; the first match counts
# (a subclass before its base).
ERROR_STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (NotFound, status.HTTP_404_NOT_FOUND),
    (NotYourInvitation, status.HTTP_403_FORBIDDEN),
    (RoleNotAllowed, status.HTTP_403_FORBIDDEN),
    (ImportTooLarge, status.HTTP_413_CONTENT_TOO_LARGE),
    (TooManyAddresses, status.HTTP_413_CONTENT_TOO_LARGE),
    (DailyLimitReached, status.HTTP_429_TOO_MANY_REQUESTS),
    (InvitationError, status.HTTP_409_CONFLICT),
    (BadImportFile, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (InvalidLink, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (InvalidExpiry, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (InvalidRoles, status.HTTP_422_UNPROCESSABLE_CONTENT),
)
_REFUSALS = tuple(kind for kind, _ in ERROR_STATUSES)


@contextmanager
def answered_errors() -> Iterator[None]:
    """A refusal becomes its status (ERROR_STATUSES), with its message as the detail."""
    try:
        yield
    except _REFUSALS as error:
        code = next(code for kind, code in ERROR_STATUSES if isinstance(error, kind))
        headers = (
            {"Retry-After": str(error.retry_after_seconds)}
            if isinstance(error, DailyLimitReached)
            else None
        )
        raise HTTPException(code, str(error), headers=headers) from None
