"""Every subscription of the invitations service, in one place."""

from __future__ import annotations

from invitations.service_layer import services
from invitations.wiring import InvitationsContext
from onboarding_shared.contract import EmailFailed, EmailSent, Envelope, UserCreated, UserUpdated
from onboarding_shared.messaging.consumer import Delivery, EventRouter, ReliableConsumer

EMAIL_OUTCOMES_QUEUE = "invitations.email-outcomes"
MEMBERS_QUEUE = "invitations.members"


def consumers(context: InvitationsContext) -> list[ReliableConsumer]:
    return [_email_outcomes(context), _members(context)]


def _email_outcomes(context: InvitationsContext) -> ReliableConsumer:
    async def on_email_sent(event: Envelope[EmailSent], _delivery: Delivery) -> None:
        await services.record_email_sent(context.uow(), event)

    async def on_email_failed(event: Envelope[EmailFailed], _delivery: Delivery) -> None:
        await services.record_email_failed(context.uow(), event)

    router = EventRouter()
    router.register(EmailSent, on_email_sent)
    router.register(EmailFailed, on_email_failed)
    return _consumer(context, EMAIL_OUTCOMES_QUEUE, router, EmailSent, EmailFailed)


def _members(context: InvitationsContext) -> ReliableConsumer:
    """Who already has an account: UserCreated also accepts the invitation it came from."""

    async def on_user(
        event: Envelope[UserCreated] | Envelope[UserUpdated], _delivery: Delivery
    ) -> None:
        await services.record_member(context.uow(), event)

    router = EventRouter()
    router.register(UserCreated, on_user)
    router.register(UserUpdated, on_user)
    return _consumer(context, MEMBERS_QUEUE, router, UserCreated, UserUpdated)


def _consumer(
    context: InvitationsContext,
    name: str,
    router: EventRouter,
    *events: type[EmailSent | EmailFailed | UserCreated | UserUpdated],
) -> ReliableConsumer:
    settings = context.settings
    queue = settings.consumer_queue(name, *(event.spec.routing_key for event in events))
    return ReliableConsumer(queue, router, publish_timeout=settings.publish_timeout_seconds)
