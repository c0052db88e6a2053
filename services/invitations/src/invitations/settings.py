from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from onboarding_shared.auth import TokenVerificationSettings
from onboarding_shared.settings import ServiceSettings, http_port, load_settings, own_database


class InvitationsSettings(ServiceSettings, TokenVerificationSettings):
    database_url: str = own_database("invitations")
    http_port: int = http_port(8002)
    workspace_name: str = Field(default="Onboarding", min_length=1, max_length=200)
    public_url: str = Field(default="http://localhost:8001", description="Base of join links.")
    invitation_ttl_hours: int = Field(default=168, ge=1, le=24 * 365, description="The default.")
    invitation_min_ttl_hours: int = Field(default=1, ge=1, le=24 * 365)
    invitation_max_ttl_hours: int = Field(default=24 * 30, ge=1, le=24 * 365)
    max_addresses_per_request: int = Field(default=500, ge=1, le=10_000)
    max_invitations_per_day: int = Field(default=5000, ge=1, le=1_000_000)
    invitation_reminder_hours_before_expiry: int = Field(
        default=48,
        ge=0,
        le=24 * 365,
        description="One reminder this long before an unaccepted invitation expires; 0: none.",
    )
    invitation_reminder_min_validity_hours: int = Field(
        default=96, ge=1, le=24 * 365, description="Only invitations valid this long get one."
    )
    reminder_check_seconds: float = Field(
        default=60, gt=0, le=3600, description="How often due reminders are looked for."
    )
    invite_links_may_never_expire: bool = Field(
        default=True, description="Whether an admin may create a reusable link without expiry."
    )
    max_rows_per_import: int = Field(
        default=5000, ge=1, le=5000, description="Rows of one CSV file of addresses."
    )
    max_import_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024, description="Size of that file."
    )
    imports_check_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often unfinished CSV imports are looked for."
    )
    invitation_token_secret: SecretStr = Field(
        description="At least 32 characters; join links are derived from it. Keep it secret."
    )

    @field_validator("invitation_token_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @model_validator(mode="after")
    def _ttl_within_bounds(self) -> InvitationsSettings:
        if (
            not self.invitation_min_ttl_hours
            <= self.invitation_ttl_hours
            <= self.invitation_max_ttl_hours
        ):
            raise ValueError(
                "INVITATION_TTL_HOURS must lie between INVITATION_MIN_TTL_HOURS "
                "and INVITATION_MAX_TTL_HOURS"
            )
        return self

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


def load() -> InvitationsSettings:
    return load_settings(InvitationsSettings)
