"""Use cases of the audit trail: record an event once, and answer an admin's query."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from onboarding_shared.contract import (
    Envelope,
    InvitationIssued,
    InvitationRevoked,
    InviteLinkIssued,
    InviteLinkRevoked,
    UserCreated,
    UserUpdated,
)
from onboarding_shared.messaging.queues import USERS_AUDIT
from onboarding_shared.unit_of_work import once_per_event
from users.domain.audit import (
    Actor,
    AuditAction,
    AuditEntry,
    TargetKind,
    facts,
    user_change_action,
)
from users.service_layer.unit_of_work import AuditPage, AuditQuery, UsersUnitOfWork

AuditedEvent = (
    InvitationIssued
    | InvitationRevoked
    | InviteLinkIssued
    | InviteLinkRevoked
    | UserCreated
    | UserUpdated
)


@once_per_event(USERS_AUDIT)
async def record(uow: UsersUnitOfWork, event: Envelope[Any]) -> None:
    """One entry per event, whoever delivers it how often."""
    fact = await _fact_of(uow, event.data)
    actor = fact.actor or await _actor(uow, event.actor_id)
    uow.audit.add(
        AuditEntry(
            event_id=event.event_id,
            occurred_at=event.occurred_at,
            action=fact.action,
            target_kind=fact.kind,
            target_id=fact.target,
            target_label=fact.label,
            actor_id=actor.user_id,
            actor_name=actor.name,
            details=fact.details,
        )
    )


@dataclass(frozen=True)
class _Fact:
    action: AuditAction
    kind: TargetKind
    target: uuid.UUID
    label: str | None
    details: dict[str, Any]
    actor: Actor | None = None  # None: whoever the event names


async def _actor(uow: UsersUnitOfWork, actor_id: uuid.UUID | None) -> Actor:
    if actor_id is None:
        return Actor(None, None)
    user = await uow.users.get(actor_id)
    return Actor(actor_id, user.name if user else None)


async def _fact_of(uow: UsersUnitOfWork, data: AuditedEvent) -> _Fact:
    fields = data.model_dump()
    match data:
        case InvitationIssued():
            seen = await uow.audit.has_entries(TargetKind.INVITATION, data.invitation_id)
            action = AuditAction.INVITATION_RESENT if seen else AuditAction.INVITED
            details = facts(fields, "roles", "expires_at", "inviter_name")
            return _Fact(action, TargetKind.INVITATION, data.invitation_id, data.email, details)
        case InvitationRevoked():
            label = await uow.audit.label_of(TargetKind.INVITATION, data.invitation_id)
            return _Fact(
                AuditAction.INVITATION_REVOKED,
                TargetKind.INVITATION,
                data.invitation_id,
                label,
                {},
            )
        case InviteLinkIssued():
            seen = await uow.audit.has_entries(TargetKind.LINK, data.link_id)
            action = AuditAction.LINK_REGENERATED if seen else AuditAction.LINK_CREATED
            details = facts(fields, "max_uses", "expires_at", "allowed_domain", "roles")
            return _Fact(action, TargetKind.LINK, data.link_id, data.allowed_domain, details)
        case InviteLinkRevoked():
            label = await uow.audit.label_of(TargetKind.LINK, data.link_id)
            return _Fact(AuditAction.LINK_REVOKED, TargetKind.LINK, data.link_id, label, {})
        case UserCreated():
            return _created(data, fields)
        case UserUpdated():
            action = user_change_action(data.changes, data.status)
            details = {"changes": data.changes, **facts(fields, "roles", "status")}
            # A first sign-in is the person's own doing, though no request of theirs caused
            # the event (the auth-listener saw the login).
            by = Actor(data.user_id, data.name) if action is AuditAction.USER_ACTIVATED else None
            return _Fact(action, TargetKind.USER, data.user_id, data.username, details, by)


def _created(data: UserCreated, fields: dict[str, Any]) -> _Fact:
    """An admin's creation names the admin; joining names the person who joined."""
    details = facts(fields, "email", "roles", "status", "invitation_id", "invite_link_id")
    joiner = Actor(data.user_id, data.name)
    if data.invite_link_id is not None:
        action, by = AuditAction.LINK_REDEEMED, joiner
    elif data.invitation_id is not None:
        action, by = AuditAction.USER_JOINED, joiner
    else:
        action, by = AuditAction.USER_CREATED, None
    return _Fact(action, TargetKind.USER, data.user_id, data.username, details, by)


async def trail(uow: UsersUnitOfWork, query: AuditQuery) -> AuditPage:
    async with uow:
        return await uow.audit.page(query)
