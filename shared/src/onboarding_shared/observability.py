"""Metrics every service exports, and structured JSON logging."""

from __future__ import annotations

import logging
import sys

import structlog
from prometheus_client import Counter

MESSAGES_HANDLED = Counter(
    "onboarding_messages_total",
    "Messages settled by a consumer, by queue and outcome (handled, retried, parked).",
    ["queue", "outcome"],
)


def configure_logging(level: str = "INFO", *, service: str, json_lines: bool = True) -> None:
    """One JSON object per line on stdout (or readable lines for a developer's terminal), for
    our logs and those of the libraries we use."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    renderer: list[structlog.types.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if json_lines
        else [structlog.dev.ConsoleRenderer(colors=False)]
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _add_service(service),
            *renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in (
        "uvicorn",
        "uvicorn.error",
        "uvicorn.access",
        "faststream",
        "faststream.access.rabbit",
    ):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


def _add_service(service: str) -> structlog.types.Processor:
    def add(
        _logger: object, _method: str, event: structlog.types.EventDict
    ) -> structlog.types.EventDict:
        event.setdefault("service", service)
        return event

    return add
