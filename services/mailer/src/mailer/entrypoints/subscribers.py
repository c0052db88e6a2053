"""Every subscription of the mailer, in one place."""

from __future__ import annotations

from mailer.context import MailerContext
from mailer.entrypoints.metrics import count_deferral, count_email
from mailer.service_layer import services
from mailer.service_layer.ports import MailSender
from mailer.settings import MailerSettings
from onboarding_shared.contract import (
    AcceptanceEmailRequested,
    Envelope,
    InvitationRequested,
    WelcomeEmailRequested,
)
from onboarding_shared.messaging.consumer import (
    Delivery,
    EventRouter,
    PermanentFailure,
    ReliableConsumer,
    RetryLater,
)
from onboarding_shared.messaging.queues import (
    MAILER_INVITATIONS,
    MAILER_WELCOME_EMAILS,
    consumer_queue,
)
from onboarding_shared.messaging.topology import ConsumerQueue
from onboarding_shared.outages import DependencyUnavailable

INVITATIONS_QUEUE = MAILER_INVITATIONS.name
WELCOME_EMAILS_QUEUE = MAILER_WELCOME_EMAILS.name


def queues(settings: MailerSettings) -> tuple[ConsumerQueue, ConsumerQueue]:
    """The mailer's queues, declared even while SMTP is not configured: emails wait there.
    Both are bound to the mail exchange, which only the mailer's broker user may read."""
    return (
        consumer_queue(settings, MAILER_INVITATIONS),
        consumer_queue(settings, MAILER_WELCOME_EMAILS),
    )


def consumers(context: MailerContext, sender: MailSender) -> list[ReliableConsumer]:
    settings = context.settings
    invitations_queue, welcome_queue = queues(settings)

    async def on_invitation_requested(
        event: Envelope[InvitationRequested], delivery: Delivery
    ) -> None:
        try:
            outgoing = services.invitation_email(event, sender=settings.smtp_from)
        except ValueError as error:
            raise PermanentFailure(f"cannot build the email: {error}") from None
        await deliver_and_count(context, sender, outgoing, delivery)

    async def on_acceptance_email_requested(
        event: Envelope[AcceptanceEmailRequested], delivery: Delivery
    ) -> None:
        try:
            outgoing = services.acceptance_email(event, sender=settings.smtp_from)
        except ValueError as error:
            raise PermanentFailure(f"cannot build the email: {error}") from None
        await deliver_and_count(context, sender, outgoing, delivery)

    router = EventRouter()
    router.register(InvitationRequested, on_invitation_requested)
    # The same producer's queue: both come from the invitations service.
    router.register(AcceptanceEmailRequested, on_acceptance_email_requested)
    return [
        ReliableConsumer(
            invitations_queue, router, publish_timeout=settings.publish_timeout_seconds
        ),
        welcome_emails(context, sender, welcome_queue),
    ]


def welcome_emails(
    context: MailerContext, sender: MailSender, queue: ConsumerQueue
) -> ReliableConsumer:
    """Welcome emails for accounts an admin created (their own queue: they come from another
    service than invitations do)."""
    settings = context.settings

    async def on_welcome_requested(
        event: Envelope[WelcomeEmailRequested], delivery: Delivery
    ) -> None:
        try:
            outgoing = services.welcome_email(event, sender=settings.smtp_from)
        except ValueError as error:
            raise PermanentFailure(f"cannot build the email: {error}") from None
        await deliver_and_count(context, sender, outgoing, delivery)

    router = EventRouter()
    router.register(WelcomeEmailRequested, on_welcome_requested)
    return ReliableConsumer(queue, router, publish_timeout=settings.publish_timeout_seconds)


async def deliver_and_count(
    context: MailerContext,
    sender: MailSender,
    outgoing: services.OutgoingEmail,
    delivery: Delivery,
) -> None:
    retry_for = context.settings.smtp_retry_for
    try:
        settled = await services.deliver(
            context.uow(), sender, outgoing, delivery, retry_for=retry_for
        )
    except DependencyUnavailable:
        count_deferral(outgoing.kind, server_unavailable=True)
        raise
    except RetryLater:
        count_deferral(outgoing.kind, server_unavailable=False)
        raise
    count_email(settled)
