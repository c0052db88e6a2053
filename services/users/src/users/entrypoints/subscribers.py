"""Every subscription of the users service, in one place."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from onboarding_shared.contract import (
    Envelope,
    InvitationIssued,
    InvitationRevoked,
    InviteLinkIssued,
    InviteLinkRevoked,
    UserActivated,
)
from onboarding_shared.messaging.broadcast import LatestBroadcast
from onboarding_shared.messaging.consumer import Delivery, EventRouter, ReliableConsumer
from onboarding_shared.messaging.queues import (
    USERS_ACTIVATIONS,
    USERS_AUDIT,
    USERS_INVITATIONS,
    consumer_queue,
)
from onboarding_shared.unit_of_work import GroupedUnitsOfWork
from users.context import UsersContext
from users.entrypoints.metrics import count_activation
from users.service_layer import activations, audit, joining

ACTIVATIONS_QUEUE = USERS_ACTIVATIONS.name
INVITATIONS_QUEUE = USERS_INVITATIONS.name
AUDIT_QUEUE = USERS_AUDIT.name


def consumers(context: UsersContext) -> list[ReliableConsumer]:
    settings = context.settings

    grouped = GroupedUnitsOfWork(context.uow)

    async def on_user_activated(event: Envelope[UserActivated], _delivery: Delivery) -> None:
        now = datetime.now(UTC)
        activation = await grouped.run(
            lambda uow: activations.apply_activation(uow, event, now=now)
        )
        count_activation(activation)

    router = EventRouter()
    router.register(UserActivated, on_user_activated)
    queue = consumer_queue(settings, USERS_ACTIVATIONS)
    return [
        ReliableConsumer(queue, router, publish_timeout=settings.publish_timeout_seconds),
        _invitations(context),
        _audit(context),
    ]


def _invitations(context: UsersContext) -> ReliableConsumer:
    """The invitations and reusable invite links whose tokens the join pages accept (only the
    tokens' hashes)."""
    settings = context.settings
    grouped = GroupedUnitsOfWork(context.uow)

    async def on_issued(event: Envelope[InvitationIssued], _delivery: Delivery) -> None:
        await grouped.run(lambda uow: joining.record_invitation(uow, event))

    async def on_revoked(event: Envelope[InvitationRevoked], _delivery: Delivery) -> None:
        await grouped.run(lambda uow: joining.record_revocation(uow, event))

    async def on_link_issued(event: Envelope[InviteLinkIssued], _delivery: Delivery) -> None:
        await grouped.run(lambda uow: joining.record_invite_link(uow, event))

    async def on_link_revoked(event: Envelope[InviteLinkRevoked], _delivery: Delivery) -> None:
        await grouped.run(lambda uow: joining.record_invite_link_revocation(uow, event))

    router = EventRouter()
    router.register(InvitationIssued, on_issued)
    router.register(InvitationRevoked, on_revoked)
    router.register(InviteLinkIssued, on_link_issued)
    router.register(InviteLinkRevoked, on_link_revoked)
    queue = consumer_queue(settings, USERS_INVITATIONS)
    return ReliableConsumer(queue, router, publish_timeout=settings.publish_timeout_seconds)


def broadcasts(context: UsersContext) -> list[LatestBroadcast[Any]]:
    """State kept from other services' broadcasts: the mailer's heartbeat, for the SMTP
    warning."""
    return [context.mailer_heartbeats]


def _audit(context: UsersContext) -> ReliableConsumer:
    """The audit trail, from every service's events (this service's own included)."""
    settings = context.settings

    grouped = GroupedUnitsOfWork(context.uow)

    async def on_event(event: Envelope[Any], _delivery: Delivery) -> None:
        await grouped.run(lambda uow: audit.record(uow, event))

    router = EventRouter()
    for model in USERS_AUDIT.events:
        router.register(model, on_event)
    queue = consumer_queue(settings, USERS_AUDIT)
    return ReliableConsumer(queue, router, publish_timeout=settings.publish_timeout_seconds)
