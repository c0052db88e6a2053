"""Every subscription of the users service, in one place."""

from __future__ import annotations

from datetime import UTC, datetime

from onboarding_shared.contract import Envelope, UserActivated
from onboarding_shared.messaging.consumer import Delivery, EventRouter, ReliableConsumer
from users.entrypoints.metrics import count_activation
from users.service_layer import services
from users.wiring import UsersContext

ACTIVATIONS_QUEUE = "users.activations"


def consumers(context: UsersContext) -> list[ReliableConsumer]:
    settings = context.settings

    async def on_user_activated(event: Envelope[UserActivated], _delivery: Delivery) -> None:
        activation = await services.apply_activation(context.uow(), event, now=datetime.now(UTC))
        count_activation(activation)

    router = EventRouter()
    router.register(UserActivated, on_user_activated)
    queue = settings.consumer_queue(ACTIVATIONS_QUEUE, UserActivated.spec.routing_key)
    return [ReliableConsumer(queue, router, publish_timeout=settings.publish_timeout_seconds)]
