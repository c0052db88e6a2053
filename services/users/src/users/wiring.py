"""What the entry points need from the wiring, as one object (built in bootstrap)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from users.service_layer.ports import AvatarProcessor, PasswordHasher, SmtpStatusSource, TokenIssuer
from users.service_layer.services import AccountPolicy
from users.service_layer.unit_of_work import UsersUnitOfWork
from users.settings import UsersSettings


@dataclass(frozen=True)
class UsersContext:
    settings: UsersSettings
    uow: Callable[[], UsersUnitOfWork]
    policy: AccountPolicy
    hasher: PasswordHasher
    tokens: TokenIssuer
    avatars: AvatarProcessor
    smtp_status: SmtpStatusSource
