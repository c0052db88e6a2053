from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator

from onboarding_shared.settings import ServiceSettings, load_settings

_NAME_OR_WILDCARD = r"^(\*|#|[^\s.#*][^#*]{0,199})$"


class AuthListenerSettings(ServiceSettings):
    database_url: str = Field(
        default="sqlite+aiosqlite:///var/auth_listener.db",
        validation_alias=AliasChoices("AUTH_LISTENER_DATABASE_URL", "DATABASE_URL"),
    )
    http_port: int = Field(default=8004, ge=1, le=65535)
    pending_login_retention_hours: int = Field(
        default=168,
        ge=1,
        le=24 * 365,
        description="How long a login of an account not known yet waits for its UserCreated.",
    )
    logged_in_memory_size: int = Field(
        default=100_000,
        ge=0,
        le=10_000_000,
        description="Account ids this process remembers as having logged in, so that their "
        "next logins cost no database work (about 90 bytes each; 0: off).",
    )

    keycloak_events_enabled: bool = Field(
        default=False, description="Consume Keycloak LOGIN events (keycloak-to-rabbitmq)."
    )
    keycloak_exchange: str = Field(default="amq.topic", min_length=1, max_length=200)
    keycloak_realm: str = Field(default="*", pattern=_NAME_OR_WILDCARD, description="* = any")
    keycloak_client: str = Field(default="*", pattern=_NAME_OR_WILDCARD, description="* = any")

    @field_validator("keycloak_exchange")
    @classmethod
    def _not_ours(cls, value: str) -> str:
        if value.endswith(".dlx"):
            raise ValueError("must be the exchange Keycloak publishes to, not a dead-letter one")
        return value


def load() -> AuthListenerSettings:
    return load_settings(AuthListenerSettings)
