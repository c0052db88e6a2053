"""The correlation id of the work in progress, carried from a request or event to what it emits;
and the person whose request it is, for the events it causes (their ``actor_id``)."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation_id() -> str | None:
    return _correlation_id.get()


def use_correlation_id(value: str | None) -> None:
    _correlation_id.set(value)


_actor: ContextVar[uuid.UUID | None] = ContextVar("actor", default=None)


def current_actor() -> uuid.UUID | None:
    return _actor.get()


def use_actor(user_id: uuid.UUID | None) -> None:
    """Set by the authentication of a request: its events name who asked for them."""
    _actor.set(user_id)


@contextmanager
def acting_as(user_id: uuid.UUID | None) -> Iterator[None]:
    """Work done later on someone's behalf (a background job running their request): the
    events it causes name them, as the request's own would have."""
    token = _actor.set(user_id)
    try:
        yield
    finally:
        _actor.reset(token)
