"""Use cases of the auth-listener: keep a copy of the accounts, and turn the first login of a
pending account into UserActivated. Logins of active or deactivated accounts are the busy path:
with the service's reader and memory (bootstrap), one read outside any transaction, or nothing
at all for an id this process knows has logged in. Unknown accounts cost at most one insert."""

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
from auth_listener.service_layer.logged_in import LoggedInAccounts
from auth_listener.service_layer.unit_of_work import AccountReader, AuthListenerUnitOfWork
from onboarding_shared.contract import Envelope, UserActivated, UserCreated, UserUpdated

ACCOUNTS_CONSUMER = "auth-listener.accounts"


class LoginOutcome(StrEnum):
    ACTIVATED = "activated"
    ALREADY_ACTIVE = "already_active"
    DEACTIVATED = "deactivated"
    UNKNOWN_ACCOUNT = "unknown_account"  # remembered until the account arrives


async def record_login(
    uow: AuthListenerUnitOfWork,
    login: Login,
    *,
    event_id: uuid.UUID,
    now: datetime,
    reader: AccountReader | None = None,
    logged_in: LoggedInAccounts | None = None,
) -> LoginOutcome:
    """Idempotent without an inbox row: the account's own state is the record. A first login
    turns it active in the same transaction as its UserActivated, and an account that has
    logged in is never pending again (see KnownAccount.replace_with), so the same login
    delivered again finds nothing to do. (``event_id`` is kept for callers and logs.)"""
    if logged_in is not None and login.user_id is not None and login.user_id in logged_in:
        return LoginOutcome.ALREADY_ACTIVE  # the busiest path: no database at all
    identifiers = login.identifiers
    if reader is not None:
        # Committed state, read without a transaction or lock: enough to see that there is
        # nothing to do. Pending or unknown is decided again below, under the locks.
        state = await reader.state_of(identifiers)
        if state is not None and state.status is not AccountStatus.PENDING:
            return _settled(state.id, state.status, logged_in)
    async with uow:
        if reader is None:
            account = await uow.accounts.find(identifiers)
            if account is not None and account.status is not AccountStatus.PENDING:
                return _settled(account.id, account.status, logged_in)  # nothing written
        await uow.accounts.serialize_on(identifiers)
        account = await uow.accounts.find_for_update(identifiers)  # nothing can race us now
        if account is None:
            await uow.pending_logins.remember(
                [PendingLogin(kind, value, login.logged_in_at, now) for kind, value in identifiers]
            )
            await uow.commit()
            return LoginOutcome.UNKNOWN_ACCOUNT
        if account.status is not AccountStatus.PENDING:
            return _settled(account.id, account.status, logged_in)
        _activate(uow, account, login.logged_in_at)
        await uow.commit()
    if logged_in is not None:
        logged_in.remember(account.id)
    return LoginOutcome.ACTIVATED


def _settled(
    user_id: uuid.UUID, status: AccountStatus, logged_in: LoggedInAccounts | None
) -> LoginOutcome:
    if status is AccountStatus.DEACTIVATED:
        return LoginOutcome.DEACTIVATED
    if logged_in is not None:
        logged_in.remember(user_id)  # active: it has logged in, and stays so
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
    uow: AuthListenerUnitOfWork,
    event: Envelope[UserCreated] | Envelope[UserUpdated],
    *,
    logged_in: LoggedInAccounts | None = None,
) -> None:
    """Keep the copy current; a login that arrived first activates the account now. This
    process's memory follows the copy: active, remembered; deactivated (or pending), forgotten,
    so that its logins are counted as `deactivated` here again."""
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
    if logged_in is not None:
        if account.status is AccountStatus.ACTIVE:
            logged_in.remember(account.id)
        else:
            logged_in.forget(account.id)


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
