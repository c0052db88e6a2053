"""The one place that wires settings, adapters, service layer and entry points together."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from onboarding_shared.runtime import ServiceRuntime, create_http_app
from users.adapters import orm
from users.settings import UsersSettings

SERVICE = "users"
MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: UsersSettings) -> FastAPI:
    orm.map_domain()
    runtime = ServiceRuntime.create(SERVICE, settings, orm.messaging)
    return create_http_app(runtime, [], title="Onboarding: users")
