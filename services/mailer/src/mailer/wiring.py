"""What the entry points need from the wiring, as one object (built in bootstrap)."""

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
