"""Every subscription of the invitations service, in one place."""

from __future__ import annotations

from invitations.service_layer import services
from invitations.wiring import InvitationsContext
from onboarding_shared.contract import (
    EmailDeferred,
    EmailFailed,
    EmailSent,
    Envelope,
    UserCreated,
    UserUpdated,
)
from onboarding_shared.messaging.consumer import Delivery, EventRouter, ReliableConsumer
from onboarding_shared.messaging.queues import (
    INVITATIONS_EMAIL_OUTCOMES,
    INVITATIONS_MEMBERS,
    QueueDefinition,
    consumer_queue,
)

EMAIL_OUTCOMES_QUEUE = INVITATIONS_EMAIL_OUTCOMES.name
MEMBERS_QUEUE = INVITATIONS_MEMBERS.name


def consumers(context: InvitationsContext) -> list[ReliableConsumer]:
    return [_email_outcomes(context), _members(context)]


def _email_outcomes(context: InvitationsContext) -> ReliableConsumer:
    async def on_email_sent(event: Envelope[EmailSent], _delivery: Delivery) -> None:
        await services.record_email_sent(context.uow(), event)

    async def on_email_deferred(event: Envelope[EmailDeferred], _delivery: Delivery) -> None:
        await services.record_email_deferred(context.uow(), event)

    async def on_email_failed(event: Envelope[EmailFailed], _delivery: Delivery) -> None:
        await services.record_email_failed(context.uow(), event)

    router = EventRouter()
    router.register(EmailSent, on_email_sent)
    router.register(EmailDeferred, on_email_deferred)
    router.register(EmailFailed, on_email_failed)
    return _consumer(context, INVITATIONS_EMAIL_OUTCOMES, router)


def _members(context: InvitationsContext) -> ReliableConsumer:
    """Who already has an account: UserCreated also accepts the invitation it came from."""

    async def on_user(
        event: Envelope[UserCreated] | Envelope[UserUpdated], _delivery: Delivery
    ) -> None:
        await services.record_member(context.uow(), event, policy=context.invite_policy)

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
