"""The public event contract.

Every message on the ``onboarding.events`` exchange (and on its mailer-only companion,
``onboarding.events.mail``) is one :class:`Envelope` whose ``data`` is one of the models below.
The routing key is ``<name>.v<major>``.
Consumers ignore unknown fields, so producers may add optional fields within a major
version; anything else is a new major version with a new routing key.
"""

from onboarding_shared.contract.envelope import Envelope, EventSpec, mail_exchange_for, new_event
from onboarding_shared.contract.events import (
    ALL_EVENTS,
    ROLES,
    AcceptanceEmailRequested,
    EmailDeferred,
    EmailFailed,
    EmailKind,
    EmailSent,
    EventRejected,
    InvitationAccepted,
    InvitationIssued,
    InvitationRequested,
    InvitationRevoked,
    InviteLinkIssued,
    InviteLinkRevoked,
    MailerStatus,
    Role,
    UserActivated,
    UserCreated,
    UserLoggedIn,
    UserStatus,
    UserUpdated,
    WelcomeEmailRequested,
    default_roles,
    spec_for,
    spec_for_routing_key,
    spec_for_type,
)

__all__ = [
    "ALL_EVENTS",
    "ROLES",
    "AcceptanceEmailRequested",
    "EmailDeferred",
    "EmailFailed",
    "EmailKind",
    "EmailSent",
    "Envelope",
    "EventRejected",
    "EventSpec",
    "InvitationAccepted",
    "InvitationIssued",
    "InvitationRequested",
    "InvitationRevoked",
    "InviteLinkIssued",
    "InviteLinkRevoked",
    "MailerStatus",
    "Role",
    "UserActivated",
    "UserCreated",
    "UserLoggedIn",
    "UserStatus",
    "UserUpdated",
    "WelcomeEmailRequested",
    "default_roles",
    "mail_exchange_for",
    "new_event",
    "spec_for",
    "spec_for_routing_key",
    "spec_for_type",
]
