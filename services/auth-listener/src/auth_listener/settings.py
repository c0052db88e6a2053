from __future__ import annotations

from pydantic import Field, field_validator

from onboarding_shared.settings import ServiceSettings, http_port, load_settings, own_database

_NAME_OR_WILDCARD = r"^(\*|#|[^\s.#*][^#*]{0,199})$"


class AuthListenerSettings(ServiceSettings):
    database_url: str = own_database("auth_listener")
    http_port: int = http_port(8004)
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
