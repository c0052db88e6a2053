"""Every subscription of the invitations service, in one place."""

from __future__ import annotations

from typing import Any

from invitations.context import InvitationsContext
from invitations.service_layer import services
from onboarding_shared.contract import (
    EmailDeferred,
    EmailFailed,
    EmailSent,
    Envelope,
    UserCreated,
    UserUpdated,
)
from onboarding_shared.messaging.broadcast import LatestBroadcast
from onboarding_shared.messaging.consumer import Delivery, EventRouter, ReliableConsumer
from onboarding_shared.messaging.queues import (
    INVITATIONS_EMAIL_OUTCOMES,
    INVITATIONS_MEMBERS,
    QueueDefinition,
    consumer_queue,
)
from onboarding_shared.unit_of_work import GroupedUnitsOfWork

EMAIL_OUTCOMES_QUEUE = INVITATIONS_EMAIL_OUTCOMES.name
MEMBERS_QUEUE = INVITATIONS_MEMBERS.name


def consumers(context: InvitationsContext) -> list[ReliableConsumer]:
    return [_email_outcomes(context), _members(context)]


def broadcasts(context: InvitationsContext) -> list[LatestBroadcast[Any]]:
    """State kept from other services' broadcasts: the mailer's heartbeat, for the SMTP
    warning."""
    return [context.mailer_heartbeats]


def _email_outcomes(context: InvitationsContext) -> ReliableConsumer:
    grouped = GroupedUnitsOfWork(context.uow)

    async def on_email_outcome(
        event: Envelope[EmailSent] | Envelope[EmailDeferred] | Envelope[EmailFailed],
        _delivery: Delivery,
    ) -> None:
        await grouped.run(lambda uow: services.record_email_outcome(uow, event))

    router = EventRouter()
    router.register(EmailSent, on_email_outcome)
    router.register(EmailDeferred, on_email_outcome)
    router.register(EmailFailed, on_email_outcome)
    return _consumer(context, INVITATIONS_EMAIL_OUTCOMES, router)


def _members(context: InvitationsContext) -> ReliableConsumer:
    """Who already has an account: UserCreated also accepts the invitation it came from."""

    grouped = GroupedUnitsOfWork(context.uow)

    async def on_user(
        event: Envelope[UserCreated] | Envelope[UserUpdated], _delivery: Delivery
    ) -> None:
        await grouped.run(
            lambda uow: services.record_member(uow, event, policy=context.invite_policy)
        )

    router = EventRouter()
    router.register(UserCreated, on_user)
    router.register(UserUpdated, on_user)
    return _consumer(context, INVITATIONS_MEMBERS, router)


def _consumer(
    context: InvitationsContext, definition: QueueDefinition, router: EventRouter
) -> ReliableConsumer:
    settings = context.settings
    queue = consumer_queue(settings, definition)
    return ReliableConsumer(queue, router, publish_timeout=settings.publish_timeout_seconds)
