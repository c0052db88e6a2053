"""The public event contract, version 1.

Every message on the ``onboarding.events`` exchange is one :class:`Envelope` whose
``data`` is one of the models below. The routing key is ``<name>.v<major>``.
Consumers ignore unknown fields, so producers may add optional fields within a major
version; anything else is a new major version with a new routing key.
"""

from onboarding_shared.contract.envelope import Envelope, EventSpec, new_event
from onboarding_shared.contract.events import (
    ALL_EVENTS,
    EmailFailed,
    EmailKind,
    EmailSent,
    InvitationRequested,
    InvitationRevoked,
    MailerStatus,
    UserActivated,
    UserCreated,
    UserLoggedIn,
    UserStatus,
    UserUpdated,
    WelcomeEmailRequested,
    spec_for,
    spec_for_type,
)

__all__ = [
    "ALL_EVENTS",
    "EmailFailed",
    "EmailKind",
    "EmailSent",
    "Envelope",
    "EventSpec",
    "InvitationRequested",
    "InvitationRevoked",
    "MailerStatus",
    "UserActivated",
    "UserCreated",
    "UserLoggedIn",
    "UserStatus",
    "UserUpdated",
    "WelcomeEmailRequested",
    "new_event",
    "spec_for",
    "spec_for_type",
]
