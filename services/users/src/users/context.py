"""What the entry points are given: the settings and the ports they call, as one object that
bootstrap.py builds (routes read it from the app, subscribers and jobs are built with it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from onboarding_shared.contract import MailerStatus
from onboarding_shared.messaging.broadcast import LatestBroadcast
from users.service_layer.accounts import AccountPolicy
from users.service_layer.ports import AvatarProcessor, PasswordHasher, SmtpStatusSource, TokenIssuer
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
    mailer_heartbeats: LatestBroadcast[MailerStatus]
    smtp_status: SmtpStatusSource  # what the heartbeats say, for the SMTP warning
