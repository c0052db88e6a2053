"""Every subscription of the invitations service, in one place."""

from __future__ import annotations

from typing import Any

from invitations.service_layer import services
from invitations.wiring import InvitationsContext
from onboarding_shared.contract import EmailFailed, EmailSent, Envelope
from onboarding_shared.messaging.consumer import Delivery, EventRouter, ReliableConsumer

EMAIL_OUTCOMES_QUEUE = "invitations.email-outcomes"


def consumers(context: InvitationsContext) -> list[ReliableConsumer]:
    settings = context.settings

    async def on_email_sent(event: Envelope[EmailSent], _delivery: Delivery) -> Any:
        await services.record_email_sent(context.uow(), event)

    async def on_email_failed(event: Envelope[EmailFailed], _delivery: Delivery) -> Any:
        await services.record_email_failed(context.uow(), event)

    router = EventRouter()
    router.register(EmailSent, on_email_sent)
    router.register(EmailFailed, on_email_failed)
    queue = settings.consumer_queue(
        EMAIL_OUTCOMES_QUEUE, EmailSent.spec.routing_key, EmailFailed.spec.routing_key
    )
    return [ReliableConsumer(queue, router, publish_timeout=settings.publish_timeout_seconds)]
