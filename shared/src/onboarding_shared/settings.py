"""Settings every service shares; each service subclasses it with its own."""

from __future__ import annotations

import ipaddress
import sys
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from onboarding_shared.db import validate_database_url
from onboarding_shared.messaging.outbox import RelaySettings
from onboarding_shared.messaging.topology import EVENTS_EXCHANGE, Binding, ConsumerQueue


def own_database(name: str) -> Any:
    """The database_url field of the service whose files and variables are named ``name``:
    ``<NAME>_DATABASE_URL`` or, for a process running one service, ``DATABASE_URL``; a SQLite
    file under var/ by default, for a developer's machine."""
    return Field(
        default=f"sqlite+aiosqlite:///var/{name}.db",
        validation_alias=AliasChoices(f"{name.upper()}_DATABASE_URL", "DATABASE_URL"),
    )


def http_port(default: int) -> Any:
    return Field(default=default, ge=1, le=65535)


class ServiceSettings(BaseSettings):
    """Read from environment variables named like the fields, upper-cased (AMQP_URL, ...)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    database_url: str
    http_port: int = Field(ge=1, le=65535)
    http_host: str = "127.0.0.1"
    amqp_url: str = "amqp://guest:guest@localhost:5672/"
    producer_users: dict[str, str] = Field(
        default_factory=dict,
        description='The broker user of each service, as JSON ({"users": "onboarding-users", '
        "...}): an event one service alone produces is acted on only when that user published "
        "it. A service not named is trusted as the user this process connects as.",
    )
    events_exchange: str = Field(default=EVENTS_EXCHANGE, min_length=1, max_length=200)
    queue_prefix: str = Field(default="", max_length=100, description="Prepended to queue names.")
    queue_expires_seconds: int | None = Field(
        default=None, ge=60, description="Throw-away environments only: drop unused queues."
    )
    prefetch: int = Field(default=16, ge=1, le=1000, description="Unacked messages per consumer.")
    db_pool_size: int = Field(default=10, ge=1, le=200)
    retry_delays_seconds: tuple[float, ...] = Field(
        default=(1.0, 5.0, 30.0), min_length=0, max_length=10
    )
    publish_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    outbox_batch_size: int = Field(default=100, ge=1, le=10_000)
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    graceful_timeout_seconds: float = Field(default=15.0, gt=0, le=600)
    log_level: str = Field(default="INFO", pattern="(?i)^(DEBUG|INFO|WARNING|ERROR)$")
    log_format: str = Field(default="json", pattern="^(json|console)$")
    metrics_refresh_seconds: float = Field(
        default=5.0, gt=0, le=300, description="How often gauges read from the database refresh."
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or CIDR ranges of the reverse proxies (gateway, "
        "ingress controller) whose X-Forwarded-For and X-Forwarded-Proto are believed. The "
        "client address the throttles count comes from it. Empty: nobody's, so a client "
        "cannot dodge a throttle by claiming another address.",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=100 * 1024 * 1024,
        description="The largest request body accepted (413 beyond it, before reading more); "
        "routes that take uploads have their own limit.",
    )
    schema_wait_seconds: float = Field(
        default=300.0,
        ge=0,
        le=3600,
        description="How long `serve` waits for the database schema to reach this release's "
        "migrations before it gives up.",
    )
    otel_enabled: bool = Field(
        default=False,
        description="Export traces over OTLP; the SDK reads OTEL_EXPORTER_OTLP_ENDPOINT and "
        "OTEL_SERVICE_NAME itself.",
    )

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        return validate_database_url(value)

    @field_validator("amqp_url")
    @classmethod
    def _amqp_scheme(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("amqp", "amqps"):
            raise ValueError("must be an amqp:// or amqps:// URL")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                # Not "*": a service reachable other than through the proxy would then believe
                # any client's claim about its own address.
                raise ValueError(f"{entry!r} is not an IP address or CIDR range") from None
        return ",".join(entries)

    @field_validator("retry_delays_seconds")
    @classmethod
    def _positive_delays(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay <= 0 for delay in value):
            raise ValueError("every delay must be above 0")
        return value

    @model_validator(mode="after")
    def _prefetch_fits_pool(self) -> ServiceSettings:
        # Each in-flight message may hold a connection; more would queue inside the pool.
        if self.prefetch > self.db_pool_size * 2:
            raise ValueError("PREFETCH must not exceed twice DB_POOL_SIZE (the pool's overflow)")
        return self

    @property
    def broker_user(self) -> str:
        return broker_user(self.amqp_url)

    @property
    def relay(self) -> RelaySettings:
        return RelaySettings(
            batch_size=self.outbox_batch_size, poll_interval=self.outbox_poll_interval_seconds
        )

    def consumer_queue(self, name: str, *routing_keys: str | Binding) -> ConsumerQueue:
        """This service's queue ``name`` bound to ``routing_keys`` on the events exchange (or,
        given as a Binding, on another exchange)."""
        return ConsumerQueue(
            name=f"{self.queue_prefix}{name}",
            bindings=tuple(
                key if isinstance(key, Binding) else Binding(key) for key in routing_keys
            ),
            retry_delays=self.retry_delays_seconds,
            prefetch=self.prefetch,
            events_exchange=self.events_exchange,
            expires_seconds=self.queue_expires_seconds,
        )


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def load_settings(cls: type[SettingsT], **overrides: Any) -> SettingsT:
    """Build the settings or stop the process with one line per invalid setting."""
    try:
        return cls(**overrides)
    except ValidationError as error:
        for problem in error.errors(include_input=False, include_url=False):
            name = "_".join(str(part) for part in problem["loc"]).upper() or "settings"
            print(f"invalid setting {name}: {problem['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def broker_user(amqp_url: str) -> str:
    """The user a connection to ``amqp_url`` logs in as (AMQP's default when none is given)."""
    return unquote(urlsplit(amqp_url).username or "guest")


def redact_url(url: str) -> str:
    """The URL without its password, fit for a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
