"""Metrics every service exports, and structured JSON logging that never carries a secret."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import structlog
from opentelemetry import trace
from prometheus_client import Counter, Gauge

MESSAGES_HANDLED = Counter(
    "onboarding_messages_total",
    "Messages settled by a consumer, by queue and outcome (handled, retried, parked).",
    ["queue", "outcome"],
)
USE_CASES_GROUPED = Counter(
    "onboarding_grouped_use_cases_total",
    "Consumers' use cases by how their transaction ran: grouped (one transaction with others "
    "in hand at the same moment), alone (nothing else was), regrouped_alone (its group failed "
    "and it ran again alone).",
    ["how"],
)
MESSAGES_REJECTED = Counter(
    "onboarding_messages_rejected_total",
    "Messages parked by a consumer, by queue and by the broker user that published them "
    "(empty when it gave none): a publisher's rejection rate.",
    ["queue", "producer"],
)
MESSAGES_WAITING = Gauge(
    "onboarding_messages_waiting_for_dependency",
    "Messages a consumer keeps in hand, unacknowledged, until a dependency it needs (the "
    "database, the SMTP server) answers again; the rest of the queue waits in the broker.",
    ["queue"],
)
OUTBOX_PENDING = Gauge("onboarding_outbox_pending", "Outbox rows not yet published.")
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "onboarding_outbox_oldest_pending_age_seconds",
    "Age of the oldest outbox row not yet published; 0 when none is pending.",
)

REDACTED = "[redacted]"
# Keys whose values are secrets or whole payloads, whoever logs them.
_SENSITIVE_KEYS = frozenset(
    {
        "password",
        "admin_password",
        "smtp_password",
        "new_password",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "secret",
        "invitation_token_secret",
        "auth_private_key",
        "join_url",
        "set_password_url",
        "body",
        "payload",
    }
)
# Secrets that can hide inside free text: exception messages, access lines, URLs.
_SENSITIVE_TEXT: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),  # JWT
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',]+"), rf"\1{REDACTED}"),
    (re.compile(r"(/join/|/set-password/)[^\s/?#\"']+"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)\b(token=)[^&\s\"']+"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)(password[\"']?\s*[:=]\s*[\"']?)[^\s,&\"'}]+"), rf"\1{REDACTED}"),
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/\s@]+:)[^@\s]+@"), r"\1***@"),  # URL credentials
    # pydantic echoes the offending input, which may be a whole message or a password.
    (re.compile(r"input_value=.*?(?=, input_type=|\]|$)", re.DOTALL), f"input_value={REDACTED}"),
)


def scrub_text(text: str) -> str:
    for pattern, replacement in _SENSITIVE_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _scrub_value(key: str, value: Any) -> Any:
    if key.lower() in _SENSITIVE_KEYS:
        return REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {k: _scrub_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value("", item) for item in value]
    return value


def scrub_secrets(
    _logger: object, _method: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """The last line of defence: whatever a caller or a library put in a record, tokens,
    passwords and message bodies leave it redacted."""
    return {key: _scrub_value(key, value) for key, value in event.items()}


def add_trace_ids(
    _logger: object, _method: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """trace_id and span_id of the current span, when tracing is on, to join logs and traces."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


@contextmanager
def log_context(**values: object) -> Iterator[None]:
    """Every log line written inside carries ``values`` (e.g. event_id, correlation_id)."""
    present = {key: value for key, value in values.items() if value is not None}
    with structlog.contextvars.bound_contextvars(**present):
        yield


def configure_logging(level: str = "INFO", *, service: str, json_lines: bool = True) -> None:
    """One JSON object per line on stdout (or readable lines for a developer's terminal), for
    our logs and those of the libraries we use."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        add_trace_ids,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_formatter(shared, service=service, json_lines=json_lines))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


# Their own handlers would print past our format (and past scrub_secrets).
LIBRARY_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "faststream",
    "faststream.access.rabbit",
)


def _formatter(
    shared: list[structlog.types.Processor], *, service: str, json_lines: bool
) -> logging.Formatter:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _add_service(service),
            # Tracebacks become text first, so they are scrubbed like everything else.
            structlog.processors.format_exc_info,
            scrub_secrets,
            renderer,
        ],
    )


def _add_service(service: str) -> structlog.types.Processor:
    def add(
        _logger: object, _method: str, event: structlog.types.EventDict
    ) -> structlog.types.EventDict:
        event.setdefault("service", service)
        return event

    return add
