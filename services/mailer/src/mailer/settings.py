from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from pydantic import Field, SecretStr, field_validator, model_validator

from onboarding_shared.auth import TokenVerificationSettings
from onboarding_shared.settings import ServiceSettings, http_port, load_settings, own_database


class SmtpSecurity(StrEnum):
    NONE = "none"  # plain connection: development catchers only
    STARTTLS = "starttls"
    TLS = "tls"  # implicit TLS, usually port 465


class MailerSettings(ServiceSettings, TokenVerificationSettings):
    database_url: str = own_database("mailer")
    http_port: int = http_port(8003)
    smtp_host: str | None = Field(default=None, description="Unset: emails wait until it is set.")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: SmtpSecurity = SmtpSecurity.STARTTLS
    smtp_from: str = Field(default="Onboarding <no-reply@localhost>", max_length=320)
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    smtp_max_connections: int = Field(
        default=8,
        ge=1,
        le=1000,
        description="SMTP sessions this process holds open at once; with N replicas the "
        "server sees up to N times this. Messages beyond it wait their turn, unacknowledged.",
    )
    smtp_retry_for_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 30,
        description="How long an email the SMTP server cannot take yet (unreachable, 4xx) is "
        "retried, as a mail transfer agent would; never beyond the expiry of its link.",
    )
    status_interval_seconds: float = Field(default=10.0, gt=0, le=300)

    @field_validator("smtp_host", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("smtp_tls", mode="before")
    @classmethod
    def _accept_booleans(cls, value: object) -> object:
        aliases = {
            "true": "tls",
            "1": "tls",
            "yes": "tls",
            "false": "none",
            "0": "none",
            "no": "none",
        }
        return aliases.get(str(value).lower(), str(value).lower()) if value is not None else value

    @field_validator("smtp_from")
    @classmethod
    def _single_line(cls, value: str) -> str:
        if "\r" in value or "\n" in value or "@" not in value:
            raise ValueError("must be one address, e.g. 'Team <team@example.com>'")
        return value

    @model_validator(mode="after")
    def _credentials_together(self) -> MailerSettings:
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("SMTP_USERNAME and SMTP_PASSWORD must be set together")
        return self

    @property
    def smtp_configured(self) -> bool:
        return self.smtp_host is not None

    @property
    def smtp_retry_for(self) -> timedelta:
        return timedelta(hours=self.smtp_retry_for_hours)


def load() -> MailerSettings:
    return load_settings(MailerSettings)
