"""What the entry points are given: the settings and the ports they call, as one object that
bootstrap.py builds (routes read it from the app, subscribers and jobs are built with it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mailer.service_layer.ports import MailSender
from mailer.service_layer.unit_of_work import MailerUnitOfWork
from mailer.settings import MailerSettings


@dataclass(frozen=True)
class MailerContext:
    settings: MailerSettings
    uow: Callable[[], MailerUnitOfWork]
    sender: MailSender | None  # None while SMTP is not configured
