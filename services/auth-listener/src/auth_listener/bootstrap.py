"""The one place that wires settings, adapters, service layer and entry points together."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from auth_listener.adapters import orm
from auth_listener.settings import AuthListenerSettings
from onboarding_shared.runtime import ServiceRuntime, create_http_app

SERVICE = "auth-listener"
MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: AuthListenerSettings) -> FastAPI:
    orm.map_domain()
    runtime = ServiceRuntime.create(SERVICE, settings, orm.messaging)
    return create_http_app(runtime, [], title="Onboarding: auth-listener")
