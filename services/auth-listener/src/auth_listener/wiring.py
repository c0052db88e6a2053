"""What the entry points need from the wiring, as one object (built in bootstrap)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from auth_listener.service_layer.unit_of_work import AuthListenerUnitOfWork
from auth_listener.settings import AuthListenerSettings


@dataclass(frozen=True)
class AuthListenerContext:
    settings: AuthListenerSettings
    uow: Callable[[], AuthListenerUnitOfWork]
