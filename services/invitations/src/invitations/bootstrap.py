"""The one place that wires settings, adapters, service layer and entry points together."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from invitations.adapters import orm
from invitations.adapters.mailer_status import HeartbeatMailerStatus, mailer_heartbeats
from invitations.adapters.unit_of_work import SqlAlchemyInvitationsUnitOfWork
from invitations.context import InvitationsContext
from invitations.domain.model import ReminderRule, TokenMinter
from invitations.entrypoints import http, imports_http, jobs, links_http, subscribers
from invitations.entrypoints.metrics import status_gauge_refresher
from invitations.service_layer.services import InvitePolicy
from invitations.settings import InvitationsSettings
from onboarding_shared.contract import (
    AcceptanceEmailRequested,
    EmailDeferred,
    EmailFailed,
    EmailSent,
    EventRejected,
    InvitationAccepted,
    InvitationIssued,
    InvitationRequested,
    InvitationRevoked,
    InviteLinkIssued,
    InviteLinkRevoked,
    MailerStatus,
    UserCreated,
    UserUpdated,
)
from onboarding_shared.contract.asyncapi import ServiceEvents
from onboarding_shared.runtime import BackgroundJob, ServiceRuntime, create_http_app, periodic

SERVICE = "invitations"
MIGRATIONS = Path(__file__).parent / "migrations"
EVENTS = ServiceEvents(
    SERVICE,
    sends=(
        InvitationIssued,
        InvitationRequested,
        InvitationRevoked,
        InvitationAccepted,
        AcceptanceEmailRequested,
        InviteLinkIssued,
        InviteLinkRevoked,
        EventRejected,
    ),
    receives=(EmailSent, EmailDeferred, EmailFailed, UserCreated, UserUpdated, MailerStatus),
    description="Invitations: emails them through the mailer, follows their outcomes, "
    "and accepts them when the invited person's account is created.",
)


def create_app(settings: InvitationsSettings) -> FastAPI:
    orm.map_domain()
    runtime = ServiceRuntime.create(SERVICE, settings, orm.messaging)
    heartbeats = mailer_heartbeats(settings.events_exchange, service=SERVICE)
    context = InvitationsContext(
        settings=settings,
        uow=runtime.units_of_work(SqlAlchemyInvitationsUnitOfWork),
        invite_policy=invite_policy(settings),
        minter=TokenMinter(settings.invitation_token_secret.get_secret_value().encode()),
        mailer_heartbeats=heartbeats,
        mailer_status=HeartbeatMailerStatus(heartbeats),
    )
    runtime.consumers.extend(subscribers.consumers(context))
    runtime.broadcasts.extend(subscribers.broadcasts(context))
    runtime.background.extend(background_jobs(context))
    return create_http_app(
        runtime,
        [imports_http.router, links_http.router, http.router],
        title="Onboarding: invitations",
        events=EVENTS,
        context=context,
    )


def invite_policy(settings: InvitationsSettings) -> InvitePolicy:
    return InvitePolicy(
        workspace_name=settings.workspace_name,
        public_url=settings.public_url,
        default_ttl_hours=settings.invitation_ttl_hours,
        min_ttl_hours=settings.invitation_min_ttl_hours,
        max_ttl_hours=settings.invitation_max_ttl_hours,
        max_addresses_per_request=settings.max_addresses_per_request,
        max_invitations_per_day=settings.max_invitations_per_day,
        max_addresses_per_import=settings.max_rows_per_import,
        links_may_never_expire=settings.invite_links_may_never_expire,
        reminders=ReminderRule(
            before=timedelta(hours=settings.invitation_reminder_hours_before_expiry) or None,
            min_validity=timedelta(hours=settings.invitation_reminder_min_validity_hours),
        ),
    )


def background_jobs(context: InvitationsContext) -> list[BackgroundJob]:
    settings = context.settings
    return [
        periodic(
            settings.metrics_refresh_seconds,
            status_gauge_refresher(context),
            what="counting invitations by status",
        ),
        periodic(
            settings.reminder_check_seconds,
            partial(jobs.send_due_reminders, context),
            what="sending due invitation reminders",
        ),
        periodic(
            settings.imports_check_seconds,
            partial(jobs.work_on_imports, context),
            what="inviting the rows of CSV imports",
        ),
    ]
