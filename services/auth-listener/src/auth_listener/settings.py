from __future__ import annotations

from pydantic import AliasChoices, Field

from onboarding_shared.settings import ServiceSettings, load_settings


class AuthListenerSettings(ServiceSettings):
    database_url: str = Field(
        default="sqlite+aiosqlite:///var/auth_listener.db",
        validation_alias=AliasChoices("AUTH_LISTENER_DATABASE_URL", "DATABASE_URL"),
    )
    http_port: int = Field(default=8004, ge=1, le=65535)


def load() -> AuthListenerSettings:
    return load_settings(AuthListenerSettings)
