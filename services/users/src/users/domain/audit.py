"""The audit trail: who did what to whom, and when, built from the events of every service.

One entry per event, keyed by the event's id, so a redelivered event records nothing twice. An
entry holds names, ids and plain facts; never a secret: events carry no links, tokens or
passwords, and of what they do carry, token hashes are left out too.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class AuditAction(StrEnum):
    INVITED = "invitation.sent"
    INVITATION_RESENT = "invitation.resent"
    INVITATION_REVOKED = "invitation.revoked"
    LINK_CREATED = "link.created"
    LINK_REGENERATED = "link.regenerated"
    LINK_REVOKED = "link.revoked"
    LINK_REDEEMED = "link.redeemed"
    USER_CREATED = "user.created"
    USER_JOINED = "user.joined"  # through an invitation
    USER_UPDATED = "user.updated"
    USER_DEACTIVATED = "user.deactivated"
    USER_REACTIVATED = "user.reactivated"
    AVATAR_CHANGED = "user.avatar_changed"
    PASSWORD_SET = "user.password_set"  # noqa: S105  (an action's name, not a password)
    USER_ACTIVATED = "user.activated"  # first login


class TargetKind(StrEnum):
    INVITATION = "invitation"
    LINK = "link"
    USER = "user"


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID | None
    name: str | None  # as it was when it happened


@dataclass(eq=False)
class AuditEntry:
    event_id: uuid.UUID
    occurred_at: datetime
    action: AuditAction
    target_kind: TargetKind
    target_id: uuid.UUID
    target_label: str | None = None  # an address or username, to read the trail without lookups
    actor_id: uuid.UUID | None = None  # None: the system
    actor_name: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


# Never recorded, whatever an event carries now or later.
_SECRET_FIELDS = frozenset({"token_hash", "join_url", "set_password_url", "password", "token"})


def facts(data: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """The named, non-secret fields of an event's data, JSON-ready."""
    return {
        name: _plain(data[name])
        for name in names
        if name not in _SECRET_FIELDS and data.get(name) not in (None, [], "")
    }


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID | datetime):
        return value.isoformat() if isinstance(value, datetime) else str(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def user_change_action(changes: list[str], status: str) -> AuditAction:
    """What a UserUpdated was, from the names of what changed."""
    if "deactivated" in changes:
        return (
            AuditAction.USER_DEACTIVATED
            if status == "deactivated"
            else AuditAction.USER_REACTIVATED
        )
    if changes == ["avatar"]:
        return AuditAction.AVATAR_CHANGED
    if "password" in changes:
        return AuditAction.PASSWORD_SET
    if changes == ["status"] and status == "active":
        return AuditAction.USER_ACTIVATED
    return AuditAction.USER_UPDATED
