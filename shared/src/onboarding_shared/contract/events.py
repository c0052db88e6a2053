"""Event payloads, version 1. Field descriptions end up in the published JSON Schemas."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, Field, model_validator

from onboarding_shared.contract.envelope import EventData, EventSpec

UserStatus = Literal["pending", "active", "deactivated"]
EmailKind = str  # "invitation" or "welcome" today; consumers must tolerate new kinds

Email = Field(max_length=320, description="An email address.")


class InvitationRequested(EventData):
    """An invitation should be emailed (first send or resend). Carries all the mailer needs.

    `join_url` contains the invitation's secret token: restrict who may bind to this key.
    """

    spec = EventSpec("InvitationRequested", "invitation.requested", 1)

    invitation_id: uuid.UUID
    email: str = Email
    workspace_name: str = Field(max_length=200)
    join_url: str = Field(max_length=2000, description="`{PUBLIC_URL}/join/{token}`.")
    expires_at: AwareDatetime
    token_hash: str = Field(
        max_length=128, description="SHA-256 of the token, hex; lets a join page verify the link."
    )
    inviter_name: str | None = Field(default=None, max_length=200)
    message: str | None = Field(default=None, max_length=1000, description="Plain text.")


class InvitationRevoked(EventData):
    """An invitation was revoked; its link must stop working."""

    spec = EventSpec("InvitationRevoked", "invitation.revoked", 1)

    invitation_id: uuid.UUID
    token_hash: str = Field(max_length=128)
    revoked_at: AwareDatetime


class EmailSent(EventData):
    """The mailer handed an email to the SMTP server."""

    spec = EventSpec("EmailSent", "email.sent", 1)

    email_id: uuid.UUID
    kind: EmailKind = Field(description='"invitation" or "welcome"; more may come.')
    reference_id: uuid.UUID = Field(description="The invitation or user the email is about.")
    recipient: str = Email
    attempts: int = Field(ge=1)
    sent_at: AwareDatetime


class EmailFailed(EventData):
    """The mailer gave up on an email."""

    spec = EventSpec("EmailFailed", "email.failed", 1)

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

    spec = EventSpec("UserCreated", "user.created", 1)

    invitation_id: uuid.UUID | None = Field(
        default=None, description="Set when the account came from accepting an invitation."
    )


class UserUpdated(_UserSnapshot):
    """An account changed; carries the whole new state, so consumers simply replace their copy."""

    spec = EventSpec("UserUpdated", "user.updated", 1)

    updated_at: AwareDatetime


class UserLoggedIn(EventData):
    """Someone logged in. Identity providers may publish it too: give at least one identifier."""

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

    spec = EventSpec("UserActivated", "user.activated", 1)

    user_id: uuid.UUID
    activated_at: AwareDatetime = Field(description="The first login's time.")
    created_at: AwareDatetime | None = None


class WelcomeEmailRequested(EventData):
    """An admin created an account and asked for a welcome email. Carries all the mailer needs.

    `set_password_url`, when present, contains a single-use secret: restrict who may bind to
    this key. A password never travels in an event.
    """

    spec = EventSpec("WelcomeEmailRequested", "user.welcome_email_requested", 1)

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

    spec = EventSpec("MailerStatus", "mailer.status", 1)

    smtp_configured: bool
    last_attempt_ok: bool | None = Field(
        default=None, description="Whether the last attempt to reach the SMTP server worked."
    )
    last_attempt_at: AwareDatetime | None = None
    interval_seconds: float = Field(gt=0, description="When to expect the next heartbeat.")
    reported_at: AwareDatetime


ALL_EVENTS: tuple[type[EventData], ...] = (
    InvitationRequested,
    InvitationRevoked,
    EmailSent,
    EmailFailed,
    UserCreated,
    UserUpdated,
    UserLoggedIn,
    UserActivated,
    WelcomeEmailRequested,
    MailerStatus,
)

_BY_TYPE = {(model.spec.event_type, model.spec.version): model for model in ALL_EVENTS}


def spec_for(model: type[EventData]) -> EventSpec:
    return model.spec


def spec_for_type(event_type: str, version: int) -> type[EventData] | None:
    """The data model of a wire event type, or None when this contract does not know it."""
    return _BY_TYPE.get((event_type, version))
