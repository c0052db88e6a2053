"""The one place that wires settings, adapters, service layer and entry points together."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from fastapi import FastAPI

from onboarding_shared.contract import (
    EventRejected,
    InvitationIssued,
    InvitationRevoked,
    InviteLinkIssued,
    InviteLinkRevoked,
    MailerStatus,
    UserActivated,
    UserCreated,
    UserLoggedIn,
    UserUpdated,
    WelcomeEmailRequested,
)
from onboarding_shared.contract.asyncapi import ServiceEvents
from onboarding_shared.runtime import ServiceRuntime, create_http_app
from users.adapters import orm
from users.adapters.images import PillowAvatarProcessor
from users.adapters.mailer_status import HeartbeatSmtpStatus, mailer_heartbeats
from users.adapters.passwords import Argon2PasswordHasher
from users.adapters.tokens import JwtTokenIssuer
from users.adapters.unit_of_work import SqlAlchemyUsersUnitOfWork
from users.context import UsersContext
from users.domain.passwords import PasswordPolicy
from users.entrypoints import audit_http, console, http, pages, subscribers
from users.entrypoints.metrics import count_created_users
from users.entrypoints.templating import static_files
from users.service_layer import accounts
from users.service_layer.accounts import AccountPolicy, AdminSeed
from users.service_layer.errors import NoAdminConfigured
from users.settings import UsersSettings

SERVICE = "users"
MIGRATIONS = Path(__file__).parent / "migrations"
EVENTS = ServiceEvents(
    SERVICE,
    sends=(UserCreated, UserUpdated, UserLoggedIn, WelcomeEmailRequested, EventRejected),
    receives=(
        UserActivated,
        MailerStatus,
        InvitationIssued,
        InvitationRevoked,
        InviteLinkIssued,
        InviteLinkRevoked,
        UserCreated,  # its own, for the audit trail
        UserUpdated,
    ),
    description="Accounts: created by admins or by joining, logins, activation.",
)


def create_app(settings: UsersSettings) -> FastAPI:
    orm.map_domain()
    runtime = ServiceRuntime.create(SERVICE, settings, orm.messaging)
    heartbeats = mailer_heartbeats(settings.events_exchange, service=SERVICE)
    context = UsersContext(
        settings=settings,
        uow=runtime.units_of_work(SqlAlchemyUsersUnitOfWork, on_events=count_created_users),
        policy=account_policy(settings),
        hasher=Argon2PasswordHasher(),
        tokens=token_issuer(settings),
        avatars=avatar_processor(settings),
        mailer_heartbeats=heartbeats,
        smtp_status=HeartbeatSmtpStatus(heartbeats),
    )
    runtime.startup.append(partial(seed_first_admin, context))
    runtime.consumers.extend(subscribers.consumers(context))
    runtime.broadcasts.extend(subscribers.broadcasts(context))
    app = create_http_app(
        runtime,
        [*http.routers, audit_http.router, console.session_router, console.router, pages.router],
        title="Onboarding: users",
        events=EVENTS,
        context=context,
    )
    app.mount("/static", static_files(), name="static")
    return app


def account_policy(settings: UsersSettings) -> AccountPolicy:
    return AccountPolicy(
        passwords=PasswordPolicy(min_length=settings.password_min_length),
        workspace_name=settings.workspace_name,
        public_url=settings.public_url,
        password_link_ttl=timedelta(hours=settings.password_link_ttl_hours),
    )


def token_issuer(settings: UsersSettings) -> JwtTokenIssuer:
    return JwtTokenIssuer(
        settings.auth_private_key.get_secret_value(),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        ttl=timedelta(minutes=settings.access_token_ttl_minutes),
    )


def avatar_processor(settings: UsersSettings) -> PillowAvatarProcessor:
    return PillowAvatarProcessor(
        max_bytes=settings.avatar_max_bytes,
        max_pixels=settings.avatar_max_pixels,
        size=settings.avatar_size,
        max_concurrent=settings.avatar_max_concurrent_decodes,
    )


async def seed_first_admin(context: UsersContext) -> None:
    settings = context.settings
    seed = (
        AdminSeed(
            settings.admin_username,
            settings.admin_email,
            settings.admin_password.get_secret_value(),
        )
        if settings.admin_username and settings.admin_email and settings.admin_password
        else None
    )
    try:
        await accounts.seed_first_admin(
            context.uow(), seed, policy=context.policy, hasher=context.hasher, now=datetime.now(UTC)
        )
    except NoAdminConfigured as error:
        raise SystemExit(f"cannot start the users service: {error}") from None
