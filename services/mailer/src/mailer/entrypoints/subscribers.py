"""Every subscription of the mailer, in one place."""

from __future__ import annotations

from mailer.service_layer import services
from mailer.service_layer.unit_of_work import MailSender
from mailer.wiring import MailerContext
from onboarding_shared.contract import Envelope, InvitationRequested, WelcomeEmailRequested
from onboarding_shared.messaging.consumer import (
    Delivery,
    EventRouter,
    PermanentFailure,
    ReliableConsumer,
)

INVITATIONS_QUEUE = "mailer.invitations"
WELCOME_EMAILS_QUEUE = "mailer.welcome-emails"


def consumers(context: MailerContext) -> list[ReliableConsumer]:
    """No consumers while SMTP is not configured: emails wait in the durable queue."""
    sender = context.sender
    if sender is None:
        return []
    settings = context.settings

    async def on_invitation_requested(
        event: Envelope[InvitationRequested], delivery: Delivery
    ) -> None:
        try:
            outgoing = services.invitation_email(event, sender=settings.smtp_from)
        except ValueError as error:
            raise PermanentFailure(f"cannot build the email: {error}") from None
        await services.deliver(context.uow(), sender, outgoing, delivery)

    router = EventRouter()
    router.register(InvitationRequested, on_invitation_requested)
    queue = settings.consumer_queue(INVITATIONS_QUEUE, InvitationRequested.spec.routing_key)
    return [
        ReliableConsumer(queue, router, publish_timeout=settings.publish_timeout_seconds),
        welcome_emails(context, sender),
    ]


def welcome_emails(context: MailerContext, sender: MailSender) -> ReliableConsumer:
    """Welcome emails for accounts an admin created (their own queue: the link inside is a
    secret, and only the mailer may bind to its routing key)."""
    settings = context.settings

    async def on_welcome_requested(
        event: Envelope[WelcomeEmailRequested], delivery: Delivery
    ) -> None:
        try:
            outgoing = services.welcome_email(event, sender=settings.smtp_from)
        except ValueError as error:
            raise PermanentFailure(f"cannot build the email: {error}") from None
        await services.deliver(context.uow(), sender, outgoing, delivery)

    router = EventRouter()
    router.register(WelcomeEmailRequested, on_welcome_requested)
    queue = settings.consumer_queue(WELCOME_EMAILS_QUEUE, WelcomeEmailRequested.spec.routing_key)
    return ReliableConsumer(queue, router, publish_timeout=settings.publish_timeout_seconds)
