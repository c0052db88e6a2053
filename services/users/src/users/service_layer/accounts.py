"""Accounts made and edited by hand, the first admin, and the events every change of an account
sends. Each change runs in one unit of work: state and events commit together or not at all.
Password hashing (slow on purpose) runs outside transactions."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from onboarding_shared.auth import Principal
from onboarding_shared.contract import UserCreated, UserUpdated, WelcomeEmailRequested
from users.domain import rules
from users.domain.model import (
    LastAdmin,
    NewUser,
    NotAllowed,
    User,
    UserStatus,
    checked_changes,
)
from users.domain.passwords import PasswordPolicy, random_password
from users.domain.rules import ADMIN_ROLE, InvalidFields
from users.service_layer.errors import NoAdminConfigured, NotFound
from users.service_layer.ports import PasswordHasher, SmtpStatusSource
from users.service_layer.unit_of_work import DuplicateField, UserPage, UsersUnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccountPolicy:
    passwords: PasswordPolicy
    workspace_name: str
    public_url: str
    password_link_ttl: timedelta

    @property
    def login_url(self) -> str:
        return f"{self.public_url}/"

    def set_password_url(self, token: str) -> str:
        # In the fragment, so the token never reaches a server log or a Referer header.
        return f"{self.public_url}/set-password#token={token}"


class WelcomeEmailStatus(StrEnum):
    NOT_REQUESTED = "not_requested"
    QUEUED = "queued"
    WAITING_FOR_SMTP = "waiting_for_smtp"


@dataclass(frozen=True)
class WelcomeEmail:
    status: WelcomeEmailStatus
    note: str | None = None


@dataclass(frozen=True)
class CreatedUser:
    user: User
    welcome_email: WelcomeEmail


@dataclass(frozen=True)
class AdminSeed:
    username: str
    email: str
    password: str
    name: str = "Administrator"


# Creating and editing accounts


async def create_user(
    uow: UsersUnitOfWork,
    new: NewUser,
    *,
    actor: Principal,
    policy: AccountPolicy,
    hasher: PasswordHasher,
    smtp_status: SmtpStatusSource,
    now: datetime,
) -> CreatedUser:
    """A pending account, UserCreated and, if asked, WelcomeEmailRequested, all in one commit."""
    checked = new.checked(policy.passwords)
    if ADMIN_ROLE in checked.roles and not actor.is_admin:
        raise NotAllowed("only an admin may grant the admin role")
    password_hash = await hasher.hash(checked.password or random_password())
    async with uow:
        await refuse_duplicates(uow, email=checked.email, username=checked.username)
        user = User.register(checked, password_hash=password_hash, now=now)
        uow.users.add(user)
        uow.emit(user_created(user))
        if checked.send_welcome_email:
            token = (
                user.issue_password_link(now=now, ttl=policy.password_link_ttl)
                if checked.set_random_password
                else None
            )
            uow.emit(_welcome(user, token, policy))
        await uow.commit()
    return CreatedUser(user, _welcome_status(checked.send_welcome_email, smtp_status))


async def update_user(
    uow: UsersUnitOfWork,
    user_id: uuid.UUID,
    changes: Mapping[str, Any],
    *,
    actor: Principal,
    now: datetime,
) -> User:
    checked = checked_changes(changes)
    if ADMIN_ROLE in checked.get("roles", ()) and not actor.is_admin:
        raise NotAllowed("only an admin may grant the admin role")
    async with uow:
        # Lock the admins first, then the account: every editor takes locks in that order.
        admins = (
            await uow.users.lock_admin_ids() if {"roles", "deactivated"} & set(checked) else None
        )
        user = await existing_user(uow, user_id, for_update=True)
        await refuse_duplicates(
            uow, email=checked.get("email"), username=checked.get("username"), besides=user.id
        )
        was_admin = user.counts_as_admin
        changed = user.apply(checked, now=now)
        if admins is not None and was_admin and not user.counts_as_admin and admins <= {user.id}:
            raise LastAdmin("the workspace needs at least one admin who can log in")
        if changed:
            uow.emit(user_updated(user, now, changed))
            await uow.commit()
    return user


async def refuse_duplicates(
    uow: UsersUnitOfWork,
    *,
    email: str | None,
    username: str | None,
    besides: uuid.UUID | None = None,
) -> None:
    """DuplicateField naming each of the email and username another account has."""
    taken = []
    if email is not None and await uow.users.email_taken(rules.email_key(email), besides=besides):
        taken.append("email")
    if username is not None and await uow.users.username_taken(
        rules.username_key(username), besides=besides
    ):
        taken.append("username")
    if taken:
        raise DuplicateField(*taken)


async def get_user(uow: UsersUnitOfWork, user_id: uuid.UUID) -> User:
    async with uow:
        return await existing_user(uow, user_id)


async def list_users(
    uow: UsersUnitOfWork,
    *,
    status: UserStatus | None,
    search: str | None,
    limit: int,
    offset: int,
) -> UserPage:
    async with uow:
        return await uow.users.list(status=status, search=search, limit=limit, offset=offset)


async def existing_user(
    uow: UsersUnitOfWork, user_id: uuid.UUID, *, for_update: bool = False
) -> User:
    """The account, within the caller's unit of work, or NotFound."""
    user = await uow.users.get(user_id, for_update=for_update)
    if user is None:
        raise NotFound()
    return user


# The first admin


async def seed_first_admin(
    uow: UsersUnitOfWork,
    seed: AdminSeed | None,
    *,
    policy: AccountPolicy,
    hasher: PasswordHasher,
    now: datetime,
) -> User | None:
    """Create the admin from the settings unless an admin exists; safe to run on every start of
    every replica (a concurrent replica's insert wins, and this one finds it)."""
    if await _admin_exists(uow):
        return None
    if seed is None:
        raise NoAdminConfigured(
            "no admin account exists: set ADMIN_USERNAME, ADMIN_EMAIL and ADMIN_PASSWORD"
        )
    system = Principal(user_id=uuid.UUID(int=0), roles=frozenset({ADMIN_ROLE}))
    try:
        created = await create_user(
            uow,
            _first_admin(seed),
            actor=system,
            policy=policy,
            hasher=hasher,
            smtp_status=_NoEmail(),
            now=now,
        )
    except DuplicateField as duplicate:
        if await _admin_exists(uow):
            return None  # another replica created it a moment ago
        raise _seed_taken(duplicate) from None
    except InvalidFields as invalid:
        raise _seed_invalid(invalid) from None
    log.info("first admin created", extra={"username": created.user.username})
    return created.user


async def _admin_exists(uow: UsersUnitOfWork) -> bool:
    async with uow:
        return await uow.users.any_admin()


def _first_admin(seed: AdminSeed) -> NewUser:
    return NewUser(
        email=seed.email,
        name=seed.name,
        username=seed.username,
        password=seed.password,
        roles=(ADMIN_ROLE,),
        verified=True,
    )


def _seed_taken(duplicate: DuplicateField) -> NoAdminConfigured:
    return NoAdminConfigured(
        f"no admin exists, and ADMIN_{duplicate.fields[0].upper()} belongs to another "
        "account: choose another"
    )


def _seed_invalid(invalid: InvalidFields) -> NoAdminConfigured:
    names = ", ".join(f"ADMIN_{field.upper()}: {msg}" for field, msg in invalid.problems.items())
    return NoAdminConfigured(f"cannot create the first admin ({names})")


class _NoEmail:
    def smtp_configured(self) -> bool | None:
        return None


# Events


def _snapshot(user: User) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "email": user.email,
        "username": user.username,
        "name": user.name,
        "roles": list(user.roles),
        "status": user.status.value,
        "verified": user.verified,
        "created_at": user.created_at,
    }


def user_created(
    user: User,
    invitation_id: uuid.UUID | None = None,
    *,
    invite_link_id: uuid.UUID | None = None,
) -> UserCreated:
    return UserCreated(
        **_snapshot(user), invitation_id=invitation_id, invite_link_id=invite_link_id
    )


def user_updated(user: User, now: datetime, changes: Iterable[str]) -> UserUpdated:
    return UserUpdated(**_snapshot(user), updated_at=now, changes=sorted(changes))


def _welcome(user: User, token: str | None, policy: AccountPolicy) -> WelcomeEmailRequested:
    return WelcomeEmailRequested(
        user_id=user.id,
        email=user.email,
        name=user.name,
        username=user.username,
        workspace_name=policy.workspace_name,
        login_url=policy.login_url,
        set_password_url=policy.set_password_url(token) if token else None,
        set_password_expires_at=user.password_link_expires_at if token else None,
    )


def _welcome_status(requested: bool, smtp_status: SmtpStatusSource) -> WelcomeEmail:
    if not requested:
        return WelcomeEmail(WelcomeEmailStatus.NOT_REQUESTED)
    configured = smtp_status.smtp_configured()
    if configured is False:
        return WelcomeEmail(
            WelcomeEmailStatus.WAITING_FOR_SMTP,
            "SMTP is not configured: the welcome email will wait until it is; nothing is lost.",
        )
    if configured is None:
        return WelcomeEmail(
            WelcomeEmailStatus.QUEUED,
            "The mailer has not reported recently: the welcome email waits in its queue and "
            "goes out once the mailer runs with SMTP configured.",
        )
    return WelcomeEmail(WelcomeEmailStatus.QUEUED)
