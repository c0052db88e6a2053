from __future__ import annotations

from pydantic import AliasChoices, Field

from onboarding_shared.settings import ServiceSettings, load_settings


class UsersSettings(ServiceSettings):
    database_url: str = Field(
        default="sqlite+aiosqlite:///var/users.db",
        validation_alias=AliasChoices("USERS_DATABASE_URL", "DATABASE_URL"),
    )
    http_port: int = Field(default=8001, ge=1, le=65535)


def load() -> UsersSettings:
    return load_settings(UsersSettings)
