from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from onboarding_shared.auth import TokenVerificationSettings, load_public_keys, pem_from_environment
from onboarding_shared.settings import ServiceSettings, http_port, load_settings, own_database
from users.adapters.tokens import load_private_key
from users.domain.sessions import SessionPolicy
from users.domain.throttling import ThrottlePolicy


class UsersSettings(ServiceSettings, TokenVerificationSettings):
    database_url: str = own_database("users")
    http_port: int = http_port(8001)
    workspace_name: str = Field(default="Onboarding", min_length=1, max_length=200)
    public_url: str = Field(
        default="http://localhost:8001", description="Base of the links in welcome emails."
    )

    chat_url: str | None = Field(
        default=None,
        description="Where a member goes after signing in (the chat itself); PUBLIC_URL if unset.",
    )
    session_idle_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="A browser session ends after this idle time."
    )
    session_max_hours: int = Field(
        default=12, ge=1, le=24 * 30, description="...and this long after signing in, at most."
    )

    auth_private_key: Annotated[SecretStr, BeforeValidator(pem_from_environment)] = Field(
        description="PEM private key (Ed25519 or RSA) that signs access tokens."
    )
    access_token_ttl_minutes: int = Field(default=60, ge=1, le=24 * 60)

    admin_username: str | None = None
    admin_email: str | None = None
    admin_password: SecretStr | None = None

    password_min_length: int = Field(default=10, ge=8, le=128)
    password_link_ttl_hours: int = Field(default=72, ge=1, le=24 * 30)

    login_max_failures_per_account: int = Field(default=5, ge=1, le=1000)
    login_max_failures_per_address: int = Field(default=50, ge=1, le=100_000)
    login_failure_window_seconds: int = Field(default=900, ge=1, le=86_400)
    login_lockout_seconds: int = Field(default=300, ge=1, le=86_400)
    join_max_failures_per_address: int = Field(
        default=20,
        ge=1,
        le=100_000,
        description="Unknown join links one client address may try within the login window.",
    )
    max_link_joins_per_address: int = Field(
        default=5,
        ge=1,
        le=100_000,
        description="Accounts one client address may create through invite links within the "
        "login window; past it, the address waits out the lockout.",
    )

    avatar_max_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024)
    # Checked on the image's header before decoding. A decode costs up to ~11 bytes a pixel
    # (a palette PNG converted and scaled), and a 3 KB PNG can claim 25 megapixels: a few
    # megapixels are plenty for a 256-pixel square and keep a decode near 45 MB.
    avatar_max_pixels: int = Field(default=4_000_000, ge=1, le=100_000_000)
    avatar_size: int = Field(default=256, ge=32, le=1024)
    avatar_max_concurrent_decodes: int = Field(
        default=2, ge=1, le=64, description="Avatar uploads decoded at once; the rest wait."
    )

    @field_validator("public_url", "chat_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("auth_private_key")
    @classmethod
    def _private_key(cls, value: SecretStr) -> SecretStr:
        load_private_key(value.get_secret_value())
        return value

    @field_validator("admin_username", "admin_email", "admin_password", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _consistent(self) -> UsersSettings:
        given = [self.admin_username, self.admin_email, self.admin_password]
        if any(value is not None for value in given) and not all(v is not None for v in given):
            raise ValueError("ADMIN_USERNAME, ADMIN_EMAIL and ADMIN_PASSWORD go together")
        own_public_key = (
            load_private_key(self.auth_private_key.get_secret_value())
            .public_key()
            .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        )
        accepted = [
            key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
            for key in load_public_keys(self.auth_public_key)
        ]
        if own_public_key not in accepted:
            raise ValueError("AUTH_PUBLIC_KEY does not contain the public half of AUTH_PRIVATE_KEY")
        return self

    @property
    def sessions(self) -> SessionPolicy:
        return SessionPolicy(
            idle=timedelta(minutes=self.session_idle_minutes),
            max_age=timedelta(hours=self.session_max_hours),
        )

    @property
    def throttling(self) -> ThrottlePolicy:
        return ThrottlePolicy(
            max_failures_per_account=self.login_max_failures_per_account,
            max_failures_per_address=self.login_max_failures_per_address,
            max_join_failures_per_address=self.join_max_failures_per_address,
            max_link_joins_per_address=self.max_link_joins_per_address,
            window=timedelta(seconds=self.login_failure_window_seconds),
            lockout=timedelta(seconds=self.login_lockout_seconds),
        )


def load() -> UsersSettings:
    return load_settings(UsersSettings)
