"""Event payloads. Field descriptions end up in the published JSON Schemas.

Retired, no longer published: `invitation.requested.v1` and `user.welcome_email_requested.v1`.
They carried join and set-password links on the exchange every consumer may bind to; their
successors (v2) go to the mail exchange, which only the mailer may read, and the public fact
of an invitation is `invitation.issued.v1`, without its link (docs/contract.md)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from onboarding_shared.contract.envelope import ANY_SERVICE, EventData, EventSpec

UserStatus = Literal["pending", "active", "deactivated"]
# The roles an account can have. A new role is a minor version of the contract: consumers that
# validate the enum must accept it before a producer sends it.
Role = Literal["admin", "user"]
ROLES: tuple[Role, ...] = ("admin", "user")


def default_roles() -> list[Role]:
    """An account's roles when nobody chose others."""
    return ["user"]


class EmailKind(StrEnum):
    """What an email is about; a new kind is a new major version of the events carrying it."""

    INVITATION = "invitation"
    WELCOME = "welcome"


Email = Field(max_length=320, description="An email address.")


class InvitationIssued(EventData):
    """An invitation was issued, or reissued with a new link or expiry (a resend). The public
    fact only: no link and no token, just the token's hash."""

    spec = EventSpec("InvitationIssued", "invitation.issued", 1, producer="invitations")

    invitation_id: uuid.UUID
    email: str = Email
    expires_at: AwareDatetime
    token_hash: str = Field(
        max_length=128, description="SHA-256 of the token, hex; lets a join page verify the link."
    )
    inviter_name: str | None = Field(default=None, max_length=200)
    roles: list[Role] = Field(
        default_factory=default_roles,
        min_length=1,
        max_length=len(ROLES),
        description="The roles of the account created by joining through this invitation, "
        'whoever uses the link. Absent from events before contract 2.2.0: `["user"]`.',
    )


class InvitationRequested(EventData):
    """Mailer only: email an invitation (first send or resend). Carries all the mailer needs,
    the join link included, so it travels on the mail exchange, which only the mailer reads."""

    spec = EventSpec(
        "InvitationRequested", "invitation.requested", 2, producer="invitations", mail_only=True
    )

    invitation_id: uuid.UUID
    email: str = Email
    workspace_name: str = Field(max_length=200)
    join_url: str = Field(max_length=2000, description="`{PUBLIC_URL}/join/{token}`: a secret.")
    expires_at: AwareDatetime
    inviter_name: str | None = Field(default=None, max_length=200)
    message: str | None = Field(default=None, max_length=1000, description="Plain text.")
    reminder: bool = Field(
        default=False,
        description="The invitation's one automatic reminder: the same link, shortly before it "
        "expires. Absent before contract 2.2.0 (false).",
    )


class InvitationRevoked(EventData):
    """An invitation was revoked; its link must stop working."""

    spec = EventSpec("InvitationRevoked", "invitation.revoked", 1, producer="invitations")

    invitation_id: uuid.UUID
    token_hash: str = Field(max_length=128)
    revoked_at: AwareDatetime


class InvitationAccepted(EventData):
    """Someone joined through an invitation: it is accepted and its link is spent."""

    spec = EventSpec(
        "InvitationAccepted", "invitation.accepted", 1, producer="invitations", mandatory=False
    )

    invitation_id: uuid.UUID
    user_id: uuid.UUID = Field(description="The account created by joining.")
    email: str = Email
    inviter_id: uuid.UUID | None = Field(
        default=None, description="Who sent the invitation, when it was a person."
    )
    accepted_at: AwareDatetime


class AcceptanceEmailRequested(EventData):
    """For the mailer: tell an inviter that their invitation was accepted ("Grace Hopper
    accepted your invitation to Acme"). Asked for unless the inviter turned it off, for this
    invitation or for all of theirs. It carries no link, so it travels on the events exchange.
    The email's outcome is not announced: the email events' `kind` is a closed set that this
    email is not part of."""

    spec = EventSpec(
        "AcceptanceEmailRequested",
        "invitation.acceptance_email_requested",
        1,
        producer="invitations",
    )

    invitation_id: uuid.UUID
    recipient: str = Field(max_length=320, description="The inviter's address.")
    inviter_name: str | None = Field(default=None, max_length=200)
    member_name: str = Field(max_length=200, description="The name the new member chose.")
    member_email: str = Email
    workspace_name: str = Field(max_length=200)
    console_url: str = Field(max_length=2000, description="Where the inviter sees their members.")
    accepted_at: AwareDatetime


class InviteLinkIssued(EventData):
    """A reusable invite link was created, or regenerated (a new URL; the old one stops
    working). The public fact only: the token's hash, never the link. Whoever follows the link
    may create an account, within its expiry, its number of uses and its email domain."""

    spec = EventSpec("InviteLinkIssued", "invite_link.issued", 1, producer="invitations")

    link_id: uuid.UUID
    token_hash: str = Field(
        max_length=128, description="SHA-256 of the link's token, hex; replaces any earlier one."
    )
    expires_at: AwareDatetime | None = Field(description="None: the link never expires.")
    max_uses: int = Field(ge=1, description="Accounts the link may create, in all.")
    allowed_domain: str | None = Field(
        default=None,
        max_length=253,
        description="Only addresses at this domain may join (checked again at account creation).",
    )
    roles: list[Role] = Field(default_factory=default_roles, min_length=1, max_length=len(ROLES))
    issued_at: AwareDatetime


class InviteLinkRevoked(EventData):
    """A reusable invite link was revoked: it creates no more accounts."""

    spec = EventSpec("InviteLinkRevoked", "invite_link.revoked", 1, producer="invitations")

    link_id: uuid.UUID
    revoked_at: AwareDatetime


class EmailSent(EventData):
    """The mailer handed an email to the SMTP server."""

    spec = EventSpec("EmailSent", "email.sent", 1, producer="mailer")

    email_id: uuid.UUID
    kind: EmailKind = Field(description="What the email was about.")
    reference_id: uuid.UUID = Field(description="The invitation or user the email is about.")
    recipient: str = Email
    attempts: int = Field(ge=1)
    sent_at: AwareDatetime


class EmailDeferred(EventData):
    """The SMTP server could not take an email right now (unreachable, or a 4xx answer): the
    mailer keeps it and tries again, the way a mail transfer agent does, until it is sent
    (EmailSent) or its deadline passes (EmailFailed). Published when the email is first
    deferred and when the reason changes, not on every attempt."""

    spec = EventSpec("EmailDeferred", "email.deferred", 1, producer="mailer")

    email_id: uuid.UUID
    kind: EmailKind
    reference_id: uuid.UUID
    recipient: str = Email
    attempts: int = Field(ge=1, description="Attempts made so far.")
    reason: str = Field(max_length=1000, description="The last answer or error.")
    next_attempt_at: AwareDatetime = Field(
        description="The mailer tries again no later than this (sooner when the server returns)."
    )
    deliver_by: AwareDatetime = Field(
        description="The mailer gives up after this (the link's expiry, or its own limit)."
    )
    deferred_at: AwareDatetime


class EmailFailed(EventData):
    """The mailer gave up on an email: the server refused it for good (5xx), or it could not be
    delivered before its deadline."""

    spec = EventSpec("EmailFailed", "email.failed", 1, producer="mailer")

    email_id: uuid.UUID
    kind: EmailKind
    reference_id: uuid.UUID
    recipient: str = Email
    attempts: int = Field(ge=1)
    reason: str = Field(max_length=1000)
    permanent: bool = Field(description="True when retrying cannot help (5xx, recipient refused).")
    failed_at: AwareDatetime


class _UserSnapshot(EventData):
    user_id: uuid.UUID
    email: str = Email
    username: str = Field(max_length=100)
    name: str = Field(max_length=200)
    roles: list[str]
    status: UserStatus
    verified: bool = False
    created_at: AwareDatetime


class UserCreated(_UserSnapshot):
    """An account was created (by an admin, or by joining through an invitation)."""

    spec = EventSpec("UserCreated", "user.created", 1, producer="users")

    invitation_id: uuid.UUID | None = Field(
        default=None, description="Set when the account came from accepting an invitation."
    )
    invite_link_id: uuid.UUID | None = Field(
        default=None, description="Set when the account came from a reusable invite link."
    )


class UserUpdated(_UserSnapshot):
    """An account changed; carries the whole new state, so consumers simply replace their copy."""

    spec = EventSpec("UserUpdated", "user.updated", 1, producer="users")

    updated_at: AwareDatetime
    changes: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="What changed, by name: fields of the snapshot (`name`, `email`, `roles`, "
        "…), `deactivated`, `avatar`, `password`, `status` (activation). More names may come; "
        "empty in events before contract 2.2.0.",
    )


def _one_identifier_required(schema: dict[str, Any]) -> None:
    # What the validator below enforces, said so that a schema validator enforces it too.
    schema["anyOf"] = [
        {"required": [name], "properties": {name: {"type": "string", "minLength": 1}}}
        for name in ("user_id", "email", "username")
    ]


class UserLoggedIn(EventData):
    """Someone logged in. Identity providers may publish it too: give at least one identifier."""

    model_config = ConfigDict(json_schema_extra=_one_identifier_required)

    spec = EventSpec("UserLoggedIn", "user.logged_in", 1)

    user_id: uuid.UUID | None = None
    email: str | None = Field(default=None, max_length=320)
    username: str | None = Field(default=None, max_length=100)
    logged_in_at: AwareDatetime
    source: str = Field(default="onboarding", max_length=100, description="Who saw the login.")

    @model_validator(mode="after")
    def _needs_an_identifier(self) -> UserLoggedIn:
        if not (self.user_id or self.email or self.username):
            raise ValueError("one of user_id, email or username is required")
        return self


class UserActivated(EventData):
    """A pending user logged in for the first time and is now active."""

    spec = EventSpec("UserActivated", "user.activated", 1, producer="auth-listener")

    user_id: uuid.UUID
    activated_at: AwareDatetime = Field(description="The first login's time.")
    created_at: AwareDatetime | None = Field(
        default=None,
        description="When the account was created; the auth-listener always sets it.",
    )


class WelcomeEmailRequested(EventData):
    """Mailer only: an admin created an account and asked for a welcome email. Carries all the
    mailer needs; `set_password_url`, when present, is a single-use secret, so this travels on
    the mail exchange, which only the mailer reads. A password never travels in an event."""

    spec = EventSpec(
        "WelcomeEmailRequested",
        "user.welcome_email_requested",
        2,
        producer="users",
        mail_only=True,
    )

    user_id: uuid.UUID
    email: str = Email
    name: str = Field(max_length=200)
    username: str = Field(max_length=100)
    workspace_name: str = Field(max_length=200)
    login_url: str = Field(max_length=2000, description="Where the user logs in.")
    set_password_url: str | None = Field(
        default=None,
        max_length=2000,
        description="`{PUBLIC_URL}/set-password#token=...`: single use, expiring. Absent when "
        "the admin chose the password.",
    )
    set_password_expires_at: AwareDatetime | None = None


class MailerStatus(EventData):
    """The mailer's periodic heartbeat: whether it can send. State, not history: each message
    expires after a few intervals, and only the latest one matters."""

    spec = EventSpec("MailerStatus", "mailer.status", 1, producer="mailer")

    smtp_configured: bool
    last_attempt_ok: bool | None = Field(
        default=None, description="Whether the last attempt to reach the SMTP server worked."
    )
    last_attempt_at: AwareDatetime | None = None
    interval_seconds: float = Field(gt=0, description="When to expect the next heartbeat.")
    reported_at: AwareDatetime

    # Part of the contract: a heartbeat this many intervals old means the mailer is gone, and
    # the mailer publishes each one with that expiration.
    STALE_AFTER_INTERVALS: ClassVar[int] = 3

    @property
    def lifetime_seconds(self) -> float:
        return self.interval_seconds * self.STALE_AFTER_INTERVALS

    def is_current(self, now: datetime) -> bool:
        return now <= self.reported_at + timedelta(seconds=self.lifetime_seconds)


class EventRejected(EventData):
    """A consumer parked a message it cannot act on. Publishers bind to it to learn that (and
    why) their message was refused: the broker confirmed it, but it changed nothing. Carries no
    part of the rejected body."""

    spec = EventSpec("EventRejected", "event.rejected", 1, producer=ANY_SERVICE)

    event_id: str | None = Field(
        default=None, max_length=200, description="The rejected message's message_id."
    )
    event_type: str | None = Field(default=None, max_length=200)
    producer: str | None = Field(
        default=None,
        max_length=200,
        description="The broker user that published it (its user_id, which the broker "
        "checks); absent when the publisher did not give one.",
    )
    routing_key: str = Field(max_length=255)
    queue: str = Field(max_length=255, description="The queue that refused it.")
    reason: str = Field(max_length=1000)
    rejected_at: AwareDatetime


ALL_EVENTS: tuple[type[EventData], ...] = (
    InvitationIssued,
    InvitationRequested,
    InvitationRevoked,
    InvitationAccepted,
    AcceptanceEmailRequested,
    InviteLinkIssued,
    InviteLinkRevoked,
    EmailSent,
    EmailDeferred,
    EmailFailed,
    UserCreated,
    UserUpdated,
    UserLoggedIn,
    UserActivated,
    WelcomeEmailRequested,
    MailerStatus,
    EventRejected,
)

_BY_TYPE = {(model.spec.event_type, model.spec.version): model for model in ALL_EVENTS}
_BY_ROUTING_KEY = {model.spec.routing_key: model.spec for model in ALL_EVENTS}


def spec_for(model: type[EventData]) -> EventSpec:
    return model.spec


def spec_for_type(event_type: str, version: int) -> type[EventData] | None:
    """The data model of a wire event type, or None when this contract does not know it."""
    return _BY_TYPE.get((event_type, version))


def spec_for_routing_key(routing_key: str) -> EventSpec | None:
    """The contract's event on ``routing_key``, or None for keys it does not define."""
    return _BY_ROUTING_KEY.get(routing_key)
