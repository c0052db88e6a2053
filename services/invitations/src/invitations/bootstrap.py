"""The one place that wires settings, adapters, service layer and entry points together."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from invitations.adapters import orm
from invitations.adapters.unit_of_work import SqlAlchemyInvitationsUnitOfWork
from invitations.domain.model import ReminderRule, TokenMinter
from invitations.entrypoints import http, imports_http, jobs, links_http, subscribers
from invitations.entrypoints.metrics import status_gauge_refresher
from invitations.service_layer.services import InvitePolicy
from invitations.settings import InvitationsSettings
from invitations.wiring import InvitationsContext
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
from onboarding_shared.messaging.status import MailerStatusWatcher
from onboarding_shared.runtime import ServiceRuntime, create_http_app, periodic

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
    context = InvitationsContext(
        settings=settings,
        uow=partial(
            SqlAlchemyInvitationsUnitOfWork,
            runtime.sessions,
            orm.messaging,
            producer=SERVICE,
            on_commit=runtime.relay.notify,
        ),
        invite_policy=InvitePolicy(
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
        ),
        minter=TokenMinter(settings.invitation_token_secret.get_secret_value().encode()),
        mailer_status=MailerStatusWatcher(settings.events_exchange, service=SERVICE),
    )
    runtime.consumers.extend(subscribers.consumers(context))
    context.mailer_status.subscribe(runtime.broker, runtime.identity)
    runtime.background.append(
        periodic(
            settings.metrics_refresh_seconds,
            status_gauge_refresher(context),
            what="counting invitations by status",
        )
    )
    runtime.background.append(
        periodic(
            settings.reminder_check_seconds,
            partial(jobs.send_due_reminders, context),
            what="sending due invitation reminders",
        )
    )
    runtime.background.append(
        periodic(
            settings.imports_check_seconds,
            partial(jobs.work_on_imports, context),
            what="inviting the rows of CSV imports",
        )
    )
    app = create_http_app(
        runtime,
        [imports_http.router, links_http.router, http.router],
        title="Onboarding: invitations",
        events=EVENTS,
    )
    app.state.context = context
    return app
