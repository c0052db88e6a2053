"""Logging in (for an API token or a browser session), with guessing slowed down, and setting a
password with the single-use link of a welcome email."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from onboarding_shared.contract import UserLoggedIn
from users.domain import rules
from users.domain.model import User
from users.domain.passwords import hash_link_token
from users.domain.rules import FieldProblem, InvalidFields
from users.domain.throttling import (
    ThrottlePolicy,
    account_key,
    address_key,
    join_address_key,
    user_key,
)
from users.service_layer.accounts import AccountPolicy, user_updated
from users.service_layer.errors import (
    AccountDeactivated,
    InvalidLink,
    LoginRefused,
    LoginThrottled,
    PasswordLinksThrottled,
)
from users.service_layer.ports import IssuedToken, PasswordHasher, TokenIssuer
from users.service_layer.throttles import (
    Limit,
    forget_failures,
    is_locked,
    record_failure,
    refuse_if_throttled,
)
from users.service_layer.unit_of_work import UsersUnitOfWork

LOGIN_SOURCE = "onboarding"


@dataclass(frozen=True)
class LoginAttempt:
    login: str
    password: str
    address: str


@dataclass(frozen=True)
class LoggedIn:
    user: User
    token: IssuedToken


async def log_in(
    uow: UsersUnitOfWork,
    attempt: LoginAttempt,
    *,
    hasher: PasswordHasher,
    tokens: TokenIssuer,
    throttling: ThrottlePolicy,
    now: datetime,
) -> LoggedIn:
    """A token and UserLoggedIn, or LoginRefused / LoginThrottled / AccountDeactivated."""
    user = await authenticate(uow, attempt, hasher=hasher, throttling=throttling, now=now)
    return LoggedIn(user, tokens.issue(user))


async def authenticate(
    uow: UsersUnitOfWork,
    attempt: LoginAttempt,
    *,
    hasher: PasswordHasher,
    throttling: ThrottlePolicy,
    now: datetime,
) -> User:
    """The account, with UserLoggedIn committed, whatever kind of login follows (a token for
    the API or a browser session); LoginRefused / LoginThrottled / AccountDeactivated."""
    login_key = rules.login_key(attempt.login)
    user, failure_keys, account_locked = await _account_of(
        uow, login_key, attempt.address, throttling=throttling, now=now
    )
    # An unknown account still costs one hash check, so timing does not reveal it.
    verified = await hasher.verify(user.password_hash if user else None, attempt.password)
    if not verified or account_locked:
        await record_failure(uow, failure_keys, throttling, now)
        raise LoginRefused()
    assert user is not None
    if not user.can_log_in:
        raise AccountDeactivated()
    await _record_login(uow, user, login_key, now)
    return user


async def _account_of(
    uow: UsersUnitOfWork, login_key: str, address: str, *, throttling: ThrottlePolicy, now: datetime
) -> tuple[User | None, list[Limit], bool]:
    """The account a login names (if any), the keys a failure counts against, and whether the
    account is locked out; LoginThrottled while the login or the client address is."""
    async with uow:
        user = await uow.users.find_by_login(login_key) if login_key else None
        keys = _throttle_keys(throttling, login_key, address)
        await refuse_if_throttled(uow, keys, now)
        # The account's own lockout refuses silently: a 429 here would tell which logins
        # (username, email) belong to the locked account, as an unknown one gets 401.
        account = (user_key(user.id), throttling.max_failures_per_account) if user else None
        account_locked = account is not None and await is_locked(uow, account[0], now)
    if account is not None and not account_locked:
        keys.append(account)
    return user, keys, account_locked


async def _record_login(uow: UsersUnitOfWork, user: User, login_key: str, now: datetime) -> None:
    async with uow:
        await forget_failures(uow, account_key(login_key), now)
        await forget_failures(uow, user_key(user.id), now)
        uow.emit(
            UserLoggedIn(
                user_id=user.id,
                email=user.email,
                username=user.username,
                logged_in_at=now,
                source=LOGIN_SOURCE,
            )
        )
        await uow.commit()


def _throttle_keys(throttling: ThrottlePolicy, login_key: str, address: str) -> list[Limit]:
    """(key, limit) pairs whose lockout is answered with 429: the login as typed, known or not,
    and the client's address."""
    return [
        (account_key(login_key), throttling.max_failures_per_account),
        (address_key(address), throttling.max_failures_per_address),
    ]


# Setting a password with a link


async def set_password_with_link(
    uow: UsersUnitOfWork,
    token: str,
    password: str,
    *,
    policy: AccountPolicy,
    hasher: PasswordHasher,
    address: str,
    throttling: ThrottlePolicy,
    now: datetime,
) -> User:
    """Spend a single-use link. Reaching the link proves the mailbox, so the email is verified.
    Unknown links count against the client address, as join links do: guessing is slowed down
    (PasswordLinksThrottled)."""
    link_hash = hash_link_token(token)
    await _refuse_unknown_link(uow, link_hash, address=address, throttling=throttling, now=now)
    async with uow:
        user = await _link_owner(uow, link_hash, now)
        try:
            policy.passwords.check(password, username=user.username, email=user.email)
        except FieldProblem as problem:
            raise InvalidFields({"password": str(problem)}) from None
    password_hash = await hasher.hash(password)
    async with uow:
        user = await _link_owner(uow, link_hash, now)  # spent by a concurrent request meanwhile?
        user.set_password(password_hash, now=now)
        was_verified, user.verified = user.verified, True
        uow.emit(user_updated(user, now, ["password", *([] if was_verified else ["verified"])]))
        await uow.commit()
    return user


async def _refuse_unknown_link(
    uow: UsersUnitOfWork, link_hash: str, *, address: str, throttling: ThrottlePolicy, now: datetime
) -> None:
    """PasswordLinksThrottled while the client address is locked out; an unknown link counted
    against it, and InvalidLink."""
    guesses = [(join_address_key(address), throttling.max_join_failures_per_address)]
    async with uow:
        try:
            await refuse_if_throttled(uow, guesses, now)
        except LoginThrottled as throttled:
            raise PasswordLinksThrottled(throttled.retry_after) from None
        user = await uow.users.find_by_password_link(link_hash)
    if user is None:
        await record_failure(uow, guesses, throttling, now)
        raise InvalidLink()


async def _link_owner(uow: UsersUnitOfWork, link_hash: str, now: datetime) -> User:
    """Within the caller's unit of work: the account whose link is still usable, or InvalidLink."""
    user = await uow.users.find_by_password_link(link_hash)
    if user is None or not user.password_link_usable(now):
        raise InvalidLink()
    return user
