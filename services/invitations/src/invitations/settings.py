from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator

from onboarding_shared.auth import TokenVerificationSettings
from onboarding_shared.settings import ServiceSettings, load_settings


class InvitationsSettings(ServiceSettings, TokenVerificationSettings):
    database_url: str = Field(
        default="sqlite+aiosqlite:///var/invitations.db",
        validation_alias=AliasChoices("INVITATIONS_DATABASE_URL", "DATABASE_URL"),
    )
    http_port: int = Field(default=8002, ge=1, le=65535)
    workspace_name: str = Field(default="Onboarding", min_length=1, max_length=200)
    public_url: str = Field(default="http://localhost:8001", description="Base of join links.")
    invitation_ttl_hours: int = Field(default=168, ge=1, le=24 * 365)

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


def load() -> InvitationsSettings:
    return load_settings(InvitationsSettings)
