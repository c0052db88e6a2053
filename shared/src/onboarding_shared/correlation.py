"""The correlation id of the work in progress, carried from a request or event to what it emits."""

from contextvars import ContextVar

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation_id() -> str | None:
    return _correlation_id.get()


def use_correlation_id(value: str | None) -> None:
    _correlation_id.set(value)
