"""What the entry points are given: the settings and the ports they call, as one object that
bootstrap.py builds (routes read it from the app, subscribers and jobs are built with it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from auth_listener.service_layer.logged_in import LoggedInAccounts
from auth_listener.service_layer.ports import AccountReader
from auth_listener.service_layer.unit_of_work import AuthListenerUnitOfWork
from auth_listener.settings import AuthListenerSettings


@dataclass(frozen=True)
class AuthListenerContext:
    settings: AuthListenerSettings
    uow: Callable[[], AuthListenerUnitOfWork]
    # The busy path of a login: a read outside any unit of work, and this process's memory of
    # accounts that have logged in (by id). None: every login goes through a unit of work.
    reader: AccountReader | None = None
    logged_in: LoggedInAccounts | None = None
