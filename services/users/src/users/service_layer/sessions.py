"""Browser sessions: signing in (a login like any other, so a Pending account turns Active)
and renewing the session while its owner is active."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from onboarding_shared.auth import BrowserSession, Principal
from users.domain.model import User
from users.domain.sessions import SessionPolicy
from users.domain.throttling import ThrottlePolicy
from users.service_layer.login import LoginAttempt, authenticate
from users.service_layer.ports import IssuedToken, PasswordHasher, TokenIssuer
from users.service_layer.unit_of_work import UsersUnitOfWork


class SessionEnded(Exception):
    """Signed out, too old, or its account is gone or deactivated: sign in again."""

    def __init__(self) -> None:
        super().__init__("the session has ended")


@dataclass(frozen=True)
class SignedIn:
    user: User
    session: BrowserSession
    token: IssuedToken


async def sign_in(
    uow: UsersUnitOfWork,
    attempt: LoginAttempt,
    *,
    hasher: PasswordHasher,
    tokens: TokenIssuer,
    throttling: ThrottlePolicy,
    sessions: SessionPolicy,
    now: datetime,
) -> SignedIn:
    """A new session, or LoginRefused / LoginThrottled / AccountDeactivated."""
    user = await authenticate(uow, attempt, hasher=hasher, throttling=throttling, now=now)
    session = BrowserSession(started_at=now, csrf=secrets.token_urlsafe(32))
    return _signed_in(user, session, tokens, sessions, now)


async def renew_session(
    uow: UsersUnitOfWork,
    principal: Principal,
    *,
    tokens: TokenIssuer,
    sessions: SessionPolicy,
    now: datetime,
) -> SignedIn:
    """The same session with a later expiry and the account's current roles."""
    user = await session_user(uow, principal, sessions=sessions, now=now)
    if user is None or principal.session is None:
        raise SessionEnded()
    return _signed_in(user, principal.session, tokens, sessions, now)


async def session_user(
    uow: UsersUnitOfWork, principal: Principal, *, sessions: SessionPolicy, now: datetime
) -> User | None:
    """The account behind a session while the session lasts and the account may sign in."""
    session = principal.session
    if session is None or sessions.has_ended(session.started_at, now):
        return None
    async with uow:
        user = await uow.users.get(principal.user_id)
    return user if user is not None and user.can_log_in else None


def _signed_in(
    user: User,
    session: BrowserSession,
    tokens: TokenIssuer,
    sessions: SessionPolicy,
    now: datetime,
) -> SignedIn:
    expires_at = sessions.expires_at(session.started_at, now)
    return SignedIn(user, session, tokens.issue_session(user, session, expires_at=expires_at))
