"""Use cases of the auth-listener: keep a copy of the accounts, and turn the first login of a
pending account into UserActivated. Logins of active, deactivated or unknown accounts are the
busy path: they cost a read, and (for unknown accounts) at most one insert, here only."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from auth_listener.domain.model import (
    AccountSnapshot,
    AccountStatus,
    KnownAccount,
    Login,
    PendingLogin,
)
from auth_listener.service_layer.unit_of_work import AuthListenerUnitOfWork
from onboarding_shared.contract import Envelope, UserActivated, UserCreated, UserUpdated

LOGINS_CONSUMER = "auth-listener.logins"
ACCOUNTS_CONSUMER = "auth-listener.accounts"


class LoginOutcome(StrEnum):
    ACTIVATED = "activated"
    ALREADY_ACTIVE = "already_active"
    DEACTIVATED = "deactivated"
    UNKNOWN_ACCOUNT = "unknown_account"  # remembered until the account arrives


async def record_login(
    uow: AuthListenerUnitOfWork, login: Login, *, event_id: uuid.UUID, now: datetime
) -> LoginOutcome:
    identifiers = login.identifiers
    async with uow:
        account = await uow.accounts.find(identifiers)
        if account is not None and account.status is not AccountStatus.PENDING:
            return _settled(account)  # the busy path: nothing written
        await uow.accounts.serialize_on(identifiers)
        account = await uow.accounts.find(identifiers)  # again, now that nothing can race us
        if account is None:
            await uow.pending_logins.remember(
                [PendingLogin(kind, value, login.logged_in_at, now) for kind, value in identifiers]
            )
            await uow.commit()
            return LoginOutcome.UNKNOWN_ACCOUNT
        account = await uow.accounts.get(account.id, for_update=True)
        assert account is not None
        if account.status is not AccountStatus.PENDING:
            return _settled(account)
        if not await uow.claim(LOGINS_CONSUMER, event_id):
            return LoginOutcome.ALREADY_ACTIVE
        _activate(uow, account, login.logged_in_at)
        await uow.commit()
        return LoginOutcome.ACTIVATED


def _settled(account: KnownAccount) -> LoginOutcome:
    if account.status is AccountStatus.DEACTIVATED:
        return LoginOutcome.DEACTIVATED
    return LoginOutcome.ALREADY_ACTIVE


def _activate(uow: AuthListenerUnitOfWork, account: KnownAccount, at: datetime) -> None:
    activated_at = account.log_in(at)
    if activated_at is not None:
        uow.emit(
            UserActivated(
                user_id=account.id, activated_at=activated_at, created_at=account.created_at
            )
        )


async def apply_account(
    uow: AuthListenerUnitOfWork, event: Envelope[UserCreated] | Envelope[UserUpdated]
) -> None:
    """Keep the copy current; a login that arrived first activates the account now."""
    snapshot = _snapshot(event.data)
    async with uow:
        if not await uow.claim(ACCOUNTS_CONSUMER, event.event_id):
            return
        # Same lock order as record_login (identifiers, then the row): no deadlock between them.
        await uow.accounts.serialize_on(KnownAccount.from_snapshot(snapshot).identifiers)
        account = await uow.accounts.get(snapshot.user_id, for_update=True)
        if account is None:
            account = KnownAccount.from_snapshot(snapshot)
            uow.accounts.add(account)
        elif not account.replace_with(snapshot):
            await uow.commit()  # an older snapshot than ours: only record it as processed
            return
        early = await uow.pending_logins.take(account.identifiers)
        if early:
            _activate(uow, account, min(login.logged_in_at for login in early))
        await uow.commit()


def _snapshot(data: UserCreated | UserUpdated) -> AccountSnapshot:
    return AccountSnapshot(
        user_id=data.user_id,
        email=data.email,
        username=data.username,
        status=AccountStatus(data.status),
        created_at=data.created_at,
        as_of=data.updated_at if isinstance(data, UserUpdated) else data.created_at,
    )


async def forget_stale_logins(uow: AuthListenerUnitOfWork, *, received_before: datetime) -> int:
    """Logins of accounts that never arrived (e.g. Keycloak users who have no account here)."""
    async with uow:
        forgotten = await uow.pending_logins.forget_received_before(received_before)
        await uow.commit()
        return forgotten
