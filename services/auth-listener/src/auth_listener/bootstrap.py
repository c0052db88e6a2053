"""The one place that wires settings, adapters, service layer and entry points together."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from auth_listener.adapters import orm
from auth_listener.adapters.reading import reading_engine
from auth_listener.adapters.repository import SqlAlchemyAccountReader
from auth_listener.adapters.unit_of_work import SqlAlchemyAuthListenerUnitOfWork
from auth_listener.context import AuthListenerContext
from auth_listener.entrypoints import subscribers
from auth_listener.entrypoints.housekeeping import forget_stale_logins
from auth_listener.service_layer.logged_in import LoggedInAccounts
from auth_listener.settings import AuthListenerSettings
from onboarding_shared.contract import (
    EventRejected,
    UserActivated,
    UserCreated,
    UserLoggedIn,
    UserUpdated,
)
from onboarding_shared.contract.asyncapi import ServiceEvents
from onboarding_shared.runtime import ServiceRuntime, create_http_app

SERVICE = "auth-listener"
MIGRATIONS = Path(__file__).parent / "migrations"
EVENTS = ServiceEvents(
    SERVICE,
    sends=(UserActivated, EventRejected),
    receives=(UserCreated, UserUpdated, UserLoggedIn),
    description="Turns a pending account's first login into UserActivated. Also reads "
    "Keycloak's own LOGIN events when KEYCLOAK_EVENTS_ENABLED (not part of this contract).",
)


def create_app(settings: AuthListenerSettings) -> FastAPI:
    orm.map_domain()
    runtime = ServiceRuntime.create(SERVICE, settings, orm.messaging)
    readers = reading_engine(runtime.engine)
    runtime.shutdown.append(readers.dispose)
    context = AuthListenerContext(
        settings=settings,
        uow=runtime.units_of_work(SqlAlchemyAuthListenerUnitOfWork),
        reader=SqlAlchemyAccountReader(readers),
        logged_in=LoggedInAccounts(settings.logged_in_memory_size),
    )
    runtime.consumers.extend(subscribers.consumers(context))
    runtime.background.append(forget_stale_logins(context))
    return create_http_app(
        runtime, [], title="Onboarding: auth-listener", events=EVENTS, context=context
    )
