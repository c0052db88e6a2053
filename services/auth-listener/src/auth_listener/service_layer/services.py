"""Use cases of the auth-listener: keep a copy of the accounts, and turn the first login of a
pending account into UserActivated. Logins of active or deactivated accounts are the busy path:
with the service's reader and memory (bootstrap), one read outside any transaction, or nothing
at all for an id this process knows has logged in. Unknown accounts cost at most one insert."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from enum import StrEnum

from auth_listener.domain.model import (
    AccountSnapshot,
    AccountState,
    AccountStatus,
    KnownAccount,
    Login,
    PendingLogin,
)
from auth_listener.service_layer.logged_in import LoggedInAccounts
from auth_listener.service_layer.ports import AccountReader
from auth_listener.service_layer.unit_of_work import AuthListenerUnitOfWork
from onboarding_shared.contract import Envelope, UserActivated, UserCreated, UserUpdated
from onboarding_shared.messaging.queues import AUTH_LISTENER_ACCOUNTS
from onboarding_shared.unit_of_work import GroupedUnitsOfWork, once_per_event


class LoginOutcome(StrEnum):
    ACTIVATED = "activated"
    ALREADY_ACTIVE = "already_active"
    DEACTIVATED = "deactivated"
    UNKNOWN_ACCOUNT = "unknown_account"  # remembered until the account arrives


async def record_login(
    uow: AuthListenerUnitOfWork | GroupedUnitsOfWork[AuthListenerUnitOfWork],
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
    delivered again finds nothing to do. (``event_id`` is kept for callers and logs.)

    ``uow`` may be a group to join (GroupedUnitsOfWork): the transaction is then shared with
    the other logins in hand, and this process's memory learns of the activation only once
    it is committed, as it must (a remembered id is never activated again)."""
    if logged_in is not None and login.user_id is not None and login.user_id in logged_in:
        return LoginOutcome.ALREADY_ACTIVE  # the busiest path: no database at all
    if reader is not None:
        # Committed state, read without a transaction or lock: enough to see that there is
        # nothing to do. Pending or unknown is decided again below, under the locks.
        committed = await reader.state_of(login.identifiers)
        if settled := _settled(committed, logged_in):
            return settled
    apply = functools.partial(_apply_login, login=login, now=now, read_first=reader is None)
    if isinstance(uow, GroupedUnitsOfWork):
        outcome, active_id = await uow.run(apply)
    else:
        outcome, active_id = await apply(uow)
    if logged_in is not None and active_id is not None:
        logged_in.remember(active_id)  # committed: active, and stays so
    return outcome


async def _apply_login(
    uow: AuthListenerUnitOfWork, *, login: Login, now: datetime, read_first: bool
) -> tuple[LoginOutcome, uuid.UUID | None]:
    """The login's outcome under the locks, and the id of its account if that is now known
    to be active."""
    identifiers = login.identifiers
    async with uow:
        if read_first:
            unlocked = await uow.accounts.find(identifiers)
            if settled := _settled(unlocked, None):
                return settled, _active_id(unlocked, settled)  # nothing written
        await uow.accounts.serialize_on(identifiers)
        account = await uow.accounts.find_for_update(identifiers)  # nothing can race us now
        if account is None:
            await _remember_until_known(uow, login, now)
            return LoginOutcome.UNKNOWN_ACCOUNT, None
        if settled := _settled(account, None):
            return settled, _active_id(account, settled)
        _activate(uow, account, login.logged_in_at)
        await uow.commit()
    return LoginOutcome.ACTIVATED, account.id


def _active_id(account: KnownAccount | None, outcome: LoginOutcome) -> uuid.UUID | None:
    return account.id if account is not None and outcome is LoginOutcome.ALREADY_ACTIVE else None


def _settled(
    account: AccountState | KnownAccount | None, logged_in: LoggedInAccounts | None
) -> LoginOutcome | None:
    """The outcome of a login that has nothing to do: its account is active or deactivated.
    None when it is pending or unknown, which only a unit of work decides."""
    if account is None or account.status is AccountStatus.PENDING:
        return None
    if account.status is AccountStatus.DEACTIVATED:
        return LoginOutcome.DEACTIVATED
    if logged_in is not None:
        logged_in.remember(account.id)  # active: it has logged in, and stays so
    return LoginOutcome.ALREADY_ACTIVE


async def _remember_until_known(uow: AuthListenerUnitOfWork, login: Login, now: datetime) -> None:
    """Its account has not arrived yet: keep the login by each identifier until it does."""
    await uow.pending_logins.remember(
        [PendingLogin(kind, value, login.logged_in_at, now) for kind, value in login.identifiers]
    )
    await uow.commit()


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
    follow_in_memory(await apply_snapshot(uow, event), logged_in)


def follow_in_memory(account: KnownAccount | None, logged_in: LoggedInAccounts | None) -> None:
    """After a snapshot was applied (and committed): this process's memory of who logged in."""
    if logged_in is None or account is None:
        return
    if account.status is AccountStatus.ACTIVE:
        logged_in.remember(account.id)
    else:
        logged_in.forget(account.id)


@once_per_event(AUTH_LISTENER_ACCOUNTS)
async def apply_snapshot(
    uow: AuthListenerUnitOfWork, event: Envelope[UserCreated] | Envelope[UserUpdated]
) -> KnownAccount | None:
    """The account as it now stands; None when the snapshot is older than our copy."""
    snapshot = _snapshot(event.data)
    # Same lock order as record_login (identifiers, then the row): no deadlock between them.
    await uow.accounts.serialize_on(KnownAccount.from_snapshot(snapshot).identifiers)
    account = await uow.accounts.get(snapshot.user_id, for_update=True)
    if account is None:
        account = KnownAccount.from_snapshot(snapshot)
        uow.accounts.add(account)
    elif not account.replace_with(snapshot):
        return None  # only recorded as processed
    early = await uow.pending_logins.take(account.identifiers)
    if early:
        _activate(uow, account, min(login.logged_in_at for login in early))
    return account


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
