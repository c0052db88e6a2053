"""What the entry points need from the wiring, as one object (built in bootstrap)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from auth_listener.service_layer.logged_in import LoggedInAccounts
from auth_listener.service_layer.unit_of_work import AccountReader, AuthListenerUnitOfWork
from auth_listener.settings import AuthListenerSettings


@dataclass(frozen=True)
class AuthListenerContext:
    settings: AuthListenerSettings
    uow: Callable[[], AuthListenerUnitOfWork]
    # The busy path of a login: a read outside any unit of work, and this process's memory of
    # accounts that have logged in (by id). None: every login goes through a unit of work.
    reader: AccountReader | None = None
    logged_in: LoggedInAccounts | None = None
