"""The one place that wires settings, adapters, service layer and entry points together."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI

from mailer.adapters import orm
from mailer.adapters.locks import KeyedLocks
from mailer.adapters.smtp import SmtpSender
from mailer.adapters.unit_of_work import SqlAlchemyMailerUnitOfWork
from mailer.context import MailerContext
from mailer.entrypoints import http, subscribers
from mailer.entrypoints.heartbeat import heartbeat
from mailer.settings import MailerSettings
from onboarding_shared.contract import (
    AcceptanceEmailRequested,
    EmailDeferred,
    EmailFailed,
    EmailSent,
    EventRejected,
    InvitationRequested,
    MailerStatus,
    WelcomeEmailRequested,
)
from onboarding_shared.contract.asyncapi import ServiceEvents
from onboarding_shared.runtime import ServiceRuntime, create_http_app

SERVICE = "mailer"
MIGRATIONS = Path(__file__).parent / "migrations"
EVENTS = ServiceEvents(
    SERVICE,
    sends=(EmailSent, EmailDeferred, EmailFailed, MailerStatus, EventRejected),
    receives=(InvitationRequested, AcceptanceEmailRequested, WelcomeEmailRequested),
    description="The mailer: sends the emails asked for, reports each outcome, and tells "
    "every service by heartbeat whether it can send.",
)

log = logging.getLogger(__name__)


def create_app(settings: MailerSettings) -> FastAPI:
    orm.map_domain()
    runtime = ServiceRuntime.create(SERVICE, settings, orm.messaging)
    sender = SmtpSender(settings) if settings.smtp_configured else None
    context = MailerContext(
        settings=settings,
        uow=runtime.units_of_work(SqlAlchemyMailerUnitOfWork, email_locks=KeyedLocks()),
        sender=sender,
    )
    if sender is None:
        log.warning("SMTP_HOST is not set: emails wait in their queue until it is")
        runtime.dormant_queues.extend(subscribers.queues(settings))
    else:
        runtime.consumers.extend(subscribers.consumers(context, sender))
        runtime.shutdown.append(sender.close)
    runtime.background.append(heartbeat(context, runtime.publisher))
    return create_http_app(
        runtime, [http.router], title="Onboarding: mailer", events=EVENTS, context=context
    )
