"""Browser sessions: how long they last, signing in, renewing, and the session token itself."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from onboarding_shared.auth import BrowserSession, InvalidToken, Principal, TokenVerifier
from tests.support.auth import PRIVATE_PEM, PUBLIC_PEM
from tests.support.fake_users import (
    ADA,
    ADMIN,
    POLICY,
    THROTTLING,
    FakeHasher,
    FakeTokens,
    FakeUsersUnitOfWork,
    FixedSmtpStatus,
    IssuedSession,
)
from users.adapters.tokens import JwtTokenIssuer
from users.domain.model import NewUser, User
from users.domain.sessions import SessionPolicy
from users.service_layer import accounts, sessions
from users.service_layer.errors import AccountDeactivated, LoginRefused
from users.service_layer.login import LoginAttempt
from users.service_layer.sessions import SessionEnded, SignedIn

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
IDLE = timedelta(minutes=30)
MAX_AGE = timedelta(hours=12)
SESSIONS = SessionPolicy(idle=IDLE, max_age=MAX_AGE)
CSRF = "c" * 43


# The policy


@pytest.mark.parametrize(
    ("signed_in_ago", "expected"),
    [
        (timedelta(0), NOW + IDLE),
        (timedelta(hours=11), NOW + IDLE),
        (MAX_AGE - IDLE, NOW + IDLE),  # both limits fall together
        (MAX_AGE - timedelta(minutes=10), NOW + timedelta(minutes=10)),  # capped by max_age
        (MAX_AGE, NOW),
    ],
    ids=["just-signed-in", "busy-for-hours", "both-limits", "near-the-end", "at-the-end"],
)
def test_a_token_lasts_the_idle_time_but_never_past_the_sessions_maximum_age(
    signed_in_ago: timedelta, expected: datetime
) -> None:
    assert SESSIONS.expires_at(NOW - signed_in_ago, NOW) == expected


@pytest.mark.parametrize(
    ("signed_in_ago", "ended"),
    [
        (timedelta(0), False),
        (MAX_AGE - timedelta(seconds=1), False),
        (MAX_AGE, True),
        (MAX_AGE + timedelta(days=1), True),
    ],
)
def test_a_session_ends_its_maximum_age_after_signing_in(
    signed_in_ago: timedelta, ended: bool
) -> None:
    assert SESSIONS.has_ended(NOW - signed_in_ago, NOW) is ended


# Signing in


async def create(uow: FakeUsersUnitOfWork, new: NewUser = ADA) -> User:
    created = await accounts.create_user(
        uow,
        new,
        actor=ADMIN,
        policy=POLICY,
        hasher=FakeHasher(),
        smtp_status=FixedSmtpStatus(True),
        now=NOW,
    )
    return created.user


async def sign_in(
    uow: FakeUsersUnitOfWork, tokens: FakeTokens, login: str, password: str
) -> SignedIn:
    return await sessions.sign_in(
        uow,
        LoginAttempt(login, password, "10.0.0.1"),
        hasher=FakeHasher(),
        tokens=tokens,
        throttling=THROTTLING,
        sessions=SESSIONS,
        now=NOW,
    )


async def test_signing_in_is_a_login_and_starts_a_session_that_lasts_the_idle_time() -> None:
    uow, tokens = FakeUsersUnitOfWork(), FakeTokens()
    ada = await create(uow)
    signed_in = await sign_in(uow, tokens, "ADA@example.com", "Analytical-1")
    assert signed_in.user.id == ada.id
    assert signed_in.session.started_at == NOW
    assert len(signed_in.session.csrf) >= 32
    assert tokens.sessions == [IssuedSession(ada.id, ("user",), signed_in.session, NOW + IDLE)]
    assert signed_in.token.access_token == f"session-1-for-{ada.id}"
    assert [e.data.user_id for e in uow.events("UserLoggedIn")] == [ada.id]


async def test_every_sign_in_gets_its_own_csrf_token() -> None:
    uow, tokens = FakeUsersUnitOfWork(), FakeTokens()
    await create(uow)
    first = await sign_in(uow, tokens, "ada", "Analytical-1")
    second = await sign_in(uow, tokens, "ada", "Analytical-1")
    assert first.session.csrf != second.session.csrf


async def test_a_refused_sign_in_issues_no_session_and_no_login_event() -> None:
    uow, tokens = FakeUsersUnitOfWork(), FakeTokens()
    ada = await create(uow)
    with pytest.raises(LoginRefused):
        await sign_in(uow, tokens, "ada", "not-the-password")
    await accounts.update_user(uow, ada.id, {"deactivated": True}, actor=ADMIN, now=NOW)
    with pytest.raises(AccountDeactivated):
        await sign_in(uow, tokens, "ada", "Analytical-1")
    assert tokens.sessions == []
    assert uow.events("UserLoggedIn") == []


# Renewing


def session_of(user_id: uuid.UUID, started_at: datetime, roles: str = "user") -> Principal:
    return Principal(
        user_id=user_id,
        roles=frozenset({roles}),
        session=BrowserSession(started_at=started_at, csrf=CSRF),
    )


async def renew(
    uow: FakeUsersUnitOfWork, tokens: FakeTokens, principal: Principal, now: datetime = NOW
) -> SignedIn:
    return await sessions.renew_session(uow, principal, tokens=tokens, sessions=SESSIONS, now=now)


async def test_renewing_keeps_the_session_and_moves_its_expiry() -> None:
    uow, tokens = FakeUsersUnitOfWork(), FakeTokens()
    ada = await create(uow)
    started = NOW - timedelta(hours=2)
    # The token still says admin; the account is a member now: the renewed token says so.
    renewed = await renew(uow, tokens, session_of(ada.id, started, roles="admin"))
    kept = BrowserSession(started_at=started, csrf=CSRF)
    assert renewed.session == kept
    assert tokens.sessions == [IssuedSession(ada.id, ("user",), kept, NOW + IDLE)]
    assert uow.events("UserLoggedIn") == []  # activity is not a login


async def test_renewing_never_extends_a_session_past_its_maximum_age() -> None:
    uow, tokens = FakeUsersUnitOfWork(), FakeTokens()
    ada = await create(uow)
    started = NOW - MAX_AGE + timedelta(minutes=5)
    await renew(uow, tokens, session_of(ada.id, started))
    assert tokens.sessions[-1].expires_at == started + MAX_AGE == NOW + timedelta(minutes=5)


async def test_a_session_past_its_maximum_age_is_not_renewed() -> None:
    uow, tokens = FakeUsersUnitOfWork(), FakeTokens()
    ada = await create(uow)
    principal = session_of(ada.id, NOW - MAX_AGE)
    with pytest.raises(SessionEnded):
        await renew(uow, tokens, principal)
    assert await sessions.session_user(uow, principal, sessions=SESSIONS, now=NOW) is None
    assert tokens.sessions == []


async def test_a_deactivated_account_ends_its_sessions() -> None:
    uow, tokens = FakeUsersUnitOfWork(), FakeTokens()
    ada = await create(uow)
    principal = session_of(ada.id, NOW - timedelta(minutes=1))
    assert await sessions.session_user(uow, principal, sessions=SESSIONS, now=NOW) is not None
    await accounts.update_user(uow, ada.id, {"deactivated": True}, actor=ADMIN, now=NOW)
    with pytest.raises(SessionEnded):
        await renew(uow, tokens, principal)
    assert await sessions.session_user(uow, principal, sessions=SESSIONS, now=NOW) is None
    assert tokens.sessions == []


async def test_a_missing_account_or_a_token_without_a_session_is_not_renewed() -> None:
    uow, tokens = FakeUsersUnitOfWork(), FakeTokens()
    ada = await create(uow)
    with pytest.raises(SessionEnded):
        await renew(uow, tokens, session_of(uuid.uuid4(), NOW))
    with pytest.raises(SessionEnded):
        await renew(uow, tokens, replace(session_of(ada.id, NOW), session=None))
    assert tokens.sessions == []


# The session token


def issuer() -> JwtTokenIssuer:
    return JwtTokenIssuer(
        PRIVATE_PEM, issuer="onboarding-users", audience="onboarding", ttl=timedelta(hours=1)
    )


def a_user() -> User:
    return User.register(ADA.checked(POLICY.passwords), password_hash="hashed:x", now=NOW)


def test_a_session_token_carries_the_session_and_its_expiry() -> None:
    user, now = a_user(), datetime.now(UTC)
    started = now - timedelta(minutes=3)
    session = BrowserSession(started_at=started, csrf=CSRF)
    issued = issuer().issue_session(user, session, expires_at=now + IDLE)
    principal = TokenVerifier(PUBLIC_PEM).verify(issued.access_token)
    assert (principal.user_id, principal.roles) == (user.id, frozenset({"user"}))
    assert principal.session == BrowserSession(started_at=started.replace(microsecond=0), csrf=CSRF)
    claims = jwt.decode(issued.access_token, options={"verify_signature": False})
    assert claims["exp"] == int((now + IDLE).timestamp())
    assert IDLE.total_seconds() - 2 <= issued.expires_in <= IDLE.total_seconds()


def test_an_access_token_is_no_session() -> None:
    issued = issuer().issue(a_user())
    assert TokenVerifier(PUBLIC_PEM).verify(issued.access_token).session is None


def test_an_idle_session_token_is_refused_once_expired() -> None:
    now = datetime.now(UTC)
    session = BrowserSession(started_at=now - timedelta(hours=1), csrf=CSRF)
    expired = issuer().issue_session(a_user(), session, expires_at=now - timedelta(minutes=1))
    with pytest.raises(InvalidToken, match="ExpiredSignature"):
        TokenVerifier(PUBLIC_PEM).verify(expired.access_token)
    fresh = issuer().issue_session(a_user(), session, expires_at=now + timedelta(minutes=1))
    assert TokenVerifier(PUBLIC_PEM).verify(fresh.access_token).session == BrowserSession(
        started_at=session.started_at.replace(microsecond=0), csrf=CSRF
    )
