"""Every subscription of the auth-listener, in one place.

- accounts: UserCreated and UserUpdated keep the local copy of the accounts current;
- logins: UserLoggedIn, from the users service or any identity provider;
- keycloak-logins (off unless KEYCLOAK_EVENTS_ENABLED): Keycloak's own LOGIN events.
Logins have their own queues, so a burst of them never delays the account copies.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

from prometheus_client import Counter

from auth_listener.context import AuthListenerContext
from auth_listener.domain.keycloak import MalformedEvent, login_from_keycloak, routing_key
from auth_listener.domain.model import Login
from auth_listener.service_layer import services
from auth_listener.service_layer.unit_of_work import AuthListenerUnitOfWork
from onboarding_shared.contract import Envelope, UserCreated, UserLoggedIn, UserUpdated
from onboarding_shared.messaging.consumer import (
    Delivery,
    EventRouter,
    PermanentFailure,
    ReliableConsumer,
)
from onboarding_shared.messaging.queues import (
    AUTH_LISTENER_ACCOUNTS,
    AUTH_LISTENER_LOGINS,
    consumer_queue,
)
from onboarding_shared.messaging.topology import Binding
from onboarding_shared.unit_of_work import GroupedUnitsOfWork

ACCOUNTS_QUEUE = AUTH_LISTENER_ACCOUNTS.name
LOGINS_QUEUE = AUTH_LISTENER_LOGINS.name
# Keycloak's own events, not the contract's: only this service knows of them.
KEYCLOAK_QUEUE = "auth-listener.keycloak-logins"

LOGINS = Counter(
    "onboarding_logins_total",
    "Logins seen by the auth-listener, by channel (event, keycloak) and outcome.",
    ["channel", "outcome"],
)
# Keycloak messages carry no id of ours: one derived from the body makes redeliveries equal.
_KEYCLOAK_IDS = uuid.UUID("9b1d3c4e-0f7a-4c39-9a51-2f0d6a3c8e11")


def consumers(context: AuthListenerContext) -> list[ReliableConsumer]:
    settings = context.settings
    found = [_accounts(context), _logins(context)]
    if settings.keycloak_events_enabled:
        found.append(_keycloak_logins(context))
    return found


def _accounts(context: AuthListenerContext) -> ReliableConsumer:
    grouped = GroupedUnitsOfWork(context.uow)

    async def on_account(event: Envelope[UserCreated] | Envelope[UserUpdated], _: Delivery) -> None:
        account = await grouped.run(lambda uow: services.apply_snapshot(uow, event))
        services.follow_in_memory(account, context.logged_in)

    router = EventRouter()
    router.register(UserCreated, on_account)
    router.register(UserUpdated, on_account)
    queue = consumer_queue(context.settings, AUTH_LISTENER_ACCOUNTS)
    return ReliableConsumer(queue, router, publish_timeout=context.settings.publish_timeout_seconds)


def _logins(context: AuthListenerContext) -> ReliableConsumer:
    grouped = GroupedUnitsOfWork(context.uow)

    async def on_logged_in(event: Envelope[UserLoggedIn], _: Delivery) -> None:
        data = event.data
        login = Login(
            logged_in_at=data.logged_in_at,
            user_id=data.user_id,
            email=data.email,
            username=data.username,
            source=data.source,
        )
        await _record(context, grouped, login, event.event_id, channel="event")

    router = EventRouter()
    router.register(UserLoggedIn, on_logged_in)
    queue = consumer_queue(context.settings, AUTH_LISTENER_LOGINS)
    return ReliableConsumer(queue, router, publish_timeout=context.settings.publish_timeout_seconds)


def _keycloak_logins(context: AuthListenerContext) -> ReliableConsumer:
    settings = context.settings
    grouped = GroupedUnitsOfWork(context.uow)

    async def on_keycloak_event(body: bytes, _: Delivery) -> None:
        try:
            login = login_from_keycloak(body)
        except MalformedEvent as error:
            raise PermanentFailure(f"not a Keycloak login event: {error}") from None
        if login is None:
            LOGINS.labels(channel="keycloak", outcome="ignored").inc()
            return
        event_id = uuid.uuid5(_KEYCLOAK_IDS, hashlib.sha256(body).hexdigest())
        await _record(context, grouped, login, event_id, channel="keycloak")

    binding = Binding(
        routing_key(settings.keycloak_realm, settings.keycloak_client),
        exchange=settings.keycloak_exchange,
    )
    queue = settings.consumer_queue(KEYCLOAK_QUEUE, binding)
    return ReliableConsumer(
        queue, on_keycloak_event, publish_timeout=settings.publish_timeout_seconds
    )


async def _record(
    context: AuthListenerContext,
    grouped: GroupedUnitsOfWork[AuthListenerUnitOfWork],
    login: Login,
    event_id: uuid.UUID,
    *,
    channel: str,
) -> None:
    outcome = await services.record_login(
        grouped,
        login,
        event_id=event_id,
        now=datetime.now(UTC),
        reader=context.reader,
        logged_in=context.logged_in,
    )
    LOGINS.labels(channel=channel, outcome=outcome.value).inc()
