"""Use cases of the users service. Each change runs in one unit of work: state and events
commit together or not at all. Password hashing (slow on purpose) runs outside transactions."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from onboarding_shared.auth import Principal
from onboarding_shared.contract import (
    Envelope,
    InvitationIssued,
    InvitationRevoked,
    InviteLinkIssued,
    InviteLinkRevoked,
    UserActivated,
    UserCreated,
    UserLoggedIn,
    UserUpdated,
    WelcomeEmailRequested,
)
from users.domain import rules
from users.domain.avatars import Avatar
from users.domain.invitations import InvitationGrant, LinkProblem
from users.domain.invite_links import InviteLinkGrant
from users.domain.model import (
    LastAdmin,
    NewUser,
    NotAllowed,
    User,
    UserStatus,
    checked_changes,
)
from users.domain.passwords import PasswordPolicy, hash_link_token, random_password
from users.domain.rules import ADMIN_ROLE, FieldProblem, InvalidFields
from users.domain.throttling import (
    LoginThrottle,
    ThrottlePolicy,
    account_key,
    address_key,
    join_address_key,
    link_join_address_key,
    user_key,
)
from users.service_layer.ports import (
    AvatarProcessor,
    IssuedToken,
    PasswordHasher,
    SmtpStatusSource,
    TokenIssuer,
)
from users.service_layer.unit_of_work import DuplicateField, UserPage, UsersUnitOfWork

log = logging.getLogger(__name__)

ACTIVATIONS_CONSUMER = "users.activations"
INVITATIONS_CONSUMER = "users.invitations"
LOGIN_SOURCE = "onboarding"


class NotFound(Exception):
    """No account with this id."""


class InvalidLink(Exception):
    """The set-password link is unknown, used, expired, or its account deactivated."""


class LoginRefused(Exception):
    """Wrong login or password: deliberately the same for both."""


class AccountDeactivated(Exception):
    """The password was right, but the account may not log in."""


class LoginThrottled(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry in {retry_after}s")
        self.retry_after = retry_after


class NoAdminConfigured(Exception):
    """No admin exists and none can be created from the settings."""


class JoinRefused(Exception):
    """The join link is unknown, used, expired or revoked, or gives a role nobody knows here."""

    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(f"join link refused: {problem}")
        self.problem = problem


class JoinThrottled(Exception):
    """Too many unknown join links from this client address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many unknown join links; retry in {retry_after}s")
        self.retry_after = retry_after


class LinkJoinsThrottled(Exception):
    """Too many accounts created through invite links from this client address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many accounts through invite links; retry in {retry_after}s")
        self.retry_after = retry_after


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
class LoginAttempt:
    login: str
    password: str
    address: str


@dataclass(frozen=True)
class LoggedIn:
    user: User
    token: IssuedToken


@dataclass(frozen=True)
class JoinForm:
    """What the join page asks for; the address comes from the invitation."""

    name: str
    username: str
    password: str


@dataclass(frozen=True)
class LinkJoinForm:
    """What the page of a reusable invite link asks for: the link names nobody, so the address
    too (at the link's domain, when it has one)."""

    email: str
    name: str
    username: str
    password: str


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
        await _refuse_duplicates(uow, email=checked.email, username=checked.username)
        user = User.register(checked, password_hash=password_hash, now=now)
        uow.users.add(user)
        uow.emit(_created(user))
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
        user = await _existing(uow, user_id, for_update=True)
        await _refuse_duplicates(
            uow, email=checked.get("email"), username=checked.get("username"), besides=user.id
        )
        was_admin = user.counts_as_admin
        changed = user.apply(checked, now=now)
        if admins is not None and was_admin and not user.counts_as_admin and admins <= {user.id}:
            raise LastAdmin("the workspace needs at least one admin who can log in")
        if changed:
            uow.emit(_updated(user, now, changed))
            await uow.commit()
    return user


async def _refuse_duplicates(
    uow: UsersUnitOfWork,
    *,
    email: str | None,
    username: str | None,
    besides: uuid.UUID | None = None,
) -> None:
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
        return await _existing(uow, user_id)


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


async def _existing(uow: UsersUnitOfWork, user_id: uuid.UUID, *, for_update: bool = False) -> User:
    user = await uow.users.get(user_id, for_update=for_update)
    if user is None:
        raise NotFound(str(user_id))
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
    async with uow:
        if await uow.users.any_admin():
            return None
    if seed is None:
        raise NoAdminConfigured(
            "no admin account exists: set ADMIN_USERNAME, ADMIN_EMAIL and ADMIN_PASSWORD"
        )
    new = NewUser(
        email=seed.email,
        name=seed.name,
        username=seed.username,
        password=seed.password,
        roles=(ADMIN_ROLE,),
        verified=True,
    )
    system = Principal(user_id=uuid.UUID(int=0), roles=frozenset({ADMIN_ROLE}))
    try:
        created = await create_user(
            uow,
            new,
            actor=system,
            policy=policy,
            hasher=hasher,
            smtp_status=_NoEmail(),
            now=now,
        )
    except DuplicateField as duplicate:
        async with uow:
            if await uow.users.any_admin():
                return None  # another replica created it a moment ago
        raise NoAdminConfigured(
            f"no admin exists, and ADMIN_{duplicate.fields[0].upper()} belongs to another "
            "account: choose another"
        ) from None
    except InvalidFields as invalid:
        names = ", ".join(
            f"ADMIN_{field.upper()}: {msg}" for field, msg in invalid.problems.items()
        )
        raise NoAdminConfigured(f"cannot create the first admin ({names})") from None
    log.info("first admin created", extra={"username": created.user.username})
    return created.user


class _NoEmail:
    def smtp_configured(self) -> bool | None:
        return None


# Logging in and passwords


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
    async with uow:
        user = await uow.users.find_by_login(login_key) if login_key else None
        keys = _throttle_keys(throttling, login_key, attempt.address)
        await _refuse_if_throttled(uow, keys, now)
        # The account's own lockout refuses silently: a 429 here would tell which logins
        # (username, email) belong to the locked account, as an unknown one gets 401.
        account = (user_key(user.id), throttling.max_failures_per_account) if user else None
        account_locked = account is not None and await _locked(uow, account[0], now)
    if account is not None and not account_locked:
        keys.append(account)
    # An unknown account still costs one hash check, so timing does not reveal it.
    verified = await hasher.verify(user.password_hash if user else None, attempt.password)
    if not verified or account_locked:
        await _record_failure(uow, keys, throttling, now)
        raise LoginRefused()
    assert user is not None
    if not user.can_log_in:
        raise AccountDeactivated()
    async with uow:
        await _forget_failures(uow, account_key(login_key), now)
        await _forget_failures(uow, user_key(user.id), now)
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
    return user


def _throttle_keys(
    throttling: ThrottlePolicy, login_key: str, address: str
) -> list[tuple[str, int]]:
    """(key, limit) pairs whose lockout is answered with 429: the login as typed, known or not,
    and the client's address."""
    return [
        (account_key(login_key), throttling.max_failures_per_account),
        (address_key(address), throttling.max_failures_per_address),
    ]


async def _locked(uow: UsersUnitOfWork, key: str, now: datetime) -> bool:
    throttle = await uow.throttles.get(key)
    return throttle is not None and throttle.retry_after(now) is not None


async def _refuse_if_throttled(
    uow: UsersUnitOfWork, keys: list[tuple[str, int]], now: datetime
) -> None:
    waits = []
    for key, _limit in keys:
        throttle = await uow.throttles.get(key)
        if throttle is not None and (wait := throttle.retry_after(now)) is not None:
            waits.append(wait)
    if waits:
        raise LoginThrottled(max(waits))


async def _record_failure(
    uow: UsersUnitOfWork, keys: list[tuple[str, int]], policy: ThrottlePolicy, now: datetime
) -> None:
    async with uow:
        for key, limit in sorted(keys):  # every login takes the locks in the same order
            throttle = await uow.throttles.lock_or_create(LoginThrottle.fresh(key, now))
            throttle.record_failure(now, limit=limit, policy=policy)
        await uow.commit()


async def _forget_failures(uow: UsersUnitOfWork, key: str, now: datetime) -> None:
    """Only the login's and the account's counts: a success must not wipe an address guessing
    other accounts."""
    throttle = await uow.throttles.get(key)
    if throttle is not None and throttle.failures:
        throttle.reset(now)


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
    (LoginThrottled)."""
    link_hash = hash_link_token(token)
    guesses = [(join_address_key(address), throttling.max_join_failures_per_address)]
    async with uow:
        await _refuse_if_throttled(uow, guesses, now)
        user = await uow.users.find_by_password_link(link_hash)
    if user is None:
        await _record_failure(uow, guesses, throttling, now)
        raise InvalidLink()
    async with uow:
        user = await uow.users.find_by_password_link(link_hash)
        if user is None or not user.password_link_usable(now):
            raise InvalidLink()
        try:
            policy.passwords.check(password, username=user.username, email=user.email)
        except FieldProblem as problem:
            raise InvalidFields({"password": str(problem)}) from None
    password_hash = await hasher.hash(password)
    async with uow:
        user = await uow.users.find_by_password_link(link_hash)
        if user is None or not user.password_link_usable(now):
            raise InvalidLink()  # spent by a concurrent request meanwhile
        user.set_password(password_hash, now=now)
        was_verified, user.verified = user.verified, True
        uow.emit(_updated(user, now, ["password", *([] if was_verified else ["verified"])]))
        await uow.commit()
    return user


# Joining through an invitation


async def invitation_for_link(
    uow: UsersUnitOfWork, token: str, *, address: str, throttling: ThrottlePolicy, now: datetime
) -> InvitationGrant:
    """The usable grant behind a join link, or JoinRefused / JoinThrottled. Unknown links count
    against the client address, so guessing them is slowed down."""
    key = join_address_key(address)
    async with uow:
        try:
            await _refuse_if_throttled(uow, [(key, throttling.max_join_failures_per_address)], now)
        except LoginThrottled as throttled:
            raise JoinThrottled(throttled.retry_after) from None
        grant = await uow.grants.find_by_token_hash(hash_link_token(token))
    if grant is None:
        await _record_failure(
            uow, [(key, throttling.max_join_failures_per_address)], throttling, now
        )
        raise JoinRefused(LinkProblem.UNKNOWN)
    if (problem := grant.problem(now)) is not None:
        if problem is LinkProblem.UNKNOWN_ROLE:
            # Not the invitee's doing: an operator has to learn of it.
            log.warning(
                "an invitation gives a role this service does not know",
                extra={"invitation_id": str(grant.invitation_id), "roles": list(grant.roles)},
            )
        raise JoinRefused(problem)
    return grant


async def join(
    uow: UsersUnitOfWork,
    token: str,
    form: JoinForm,
    *,
    address: str,
    policy: AccountPolicy,
    hasher: PasswordHasher,
    throttling: ThrottlePolicy,
    now: datetime,
) -> User:
    """Spend an invitation: a pending account with the invited address (verified: the link
    proves the mailbox) and the invitation's roles, the grant used, and UserCreated with the
    invitation id, in one commit."""
    grant = await invitation_for_link(uow, token, address=address, throttling=throttling, now=now)
    # Checked before the slow hashing, to answer a mistyped field at once...
    checked = _account_for(grant, form).checked(policy.passwords)
    assert checked.password is not None
    password_hash = await hasher.hash(checked.password)
    async with uow:
        locked = await uow.grants.find_by_token_hash(hash_link_token(token), for_update=True)
        if locked is None:
            raise JoinRefused(LinkProblem.UNKNOWN)  # replaced by a resend meanwhile
        if (problem := locked.problem(now)) is not None:
            raise JoinRefused(problem)  # spent by a concurrent request meanwhile
        # ...and again from the locked grant, the one that counts should it have changed since.
        checked = _account_for(locked, form).checked(policy.passwords)
        await _refuse_duplicates(uow, email=checked.email, username=checked.username)
        user = User.register(checked, password_hash=password_hash, now=now)
        uow.users.add(user)
        locked.use(now)
        uow.emit(_created(user, invitation_id=locked.invitation_id))
        await uow.commit()
    log.info(
        "account created by joining",
        extra={"user_id": str(user.id), "invitation_id": str(grant.invitation_id)},
    )
    return user


def _account_for(grant: InvitationGrant, form: JoinForm) -> NewUser:
    """The account a usable grant makes: the invited address and roles, whoever holds the link."""
    assert grant.email is not None  # a usable grant knows its address
    return NewUser(
        email=grant.email,
        name=form.name,
        username=form.username,
        password=form.password,
        roles=grant.roles,
        verified=True,
    )


async def record_invitation(uow: UsersUnitOfWork, event: Envelope[InvitationIssued]) -> None:
    """Learn (or renew) the grant of an invitation: only the token's hash is kept."""
    data = event.data
    async with uow:
        if not await uow.claim(INVITATIONS_CONSUMER, event.event_id):
            return
        grant = await uow.grants.get(data.invitation_id)
        if grant is None:
            uow.grants.add(
                InvitationGrant.requested(
                    data.invitation_id,
                    email=data.email,
                    token_hash=data.token_hash,
                    expires_at=data.expires_at,
                    roles=data.roles,
                )
            )
        else:
            grant.request_again(
                email=data.email,
                token_hash=data.token_hash,
                expires_at=data.expires_at,
                roles=data.roles,
            )
        await uow.commit()


async def record_revocation(uow: UsersUnitOfWork, event: Envelope[InvitationRevoked]) -> None:
    """Close the grant at once; remember a revocation that overtook its request."""
    data = event.data
    async with uow:
        if not await uow.claim(INVITATIONS_CONSUMER, event.event_id):
            return
        grant = await uow.grants.get(data.invitation_id)
        if grant is None:
            uow.grants.add(
                InvitationGrant.revoked_early(data.invitation_id, token_hash=data.token_hash)
            )
        else:
            grant.revoke()
        await uow.commit()


# Joining through a reusable invite link


async def invite_link_for_token(
    uow: UsersUnitOfWork, token: str, *, address: str, throttling: ThrottlePolicy, now: datetime
) -> InviteLinkGrant:
    """The usable link behind a token, or JoinRefused / JoinThrottled / LinkJoinsThrottled.
    Unknown tokens count against the client address exactly as unknown invitation links do
    (the same count: guessing either kind of link); an address that has made its share of
    accounts through links is refused until its lockout ends."""
    guesses = [(join_address_key(address), throttling.max_join_failures_per_address)]
    async with uow:
        try:
            await _refuse_if_throttled(uow, guesses, now)
        except LoginThrottled as throttled:
            raise JoinThrottled(throttled.retry_after) from None
        await _refuse_if_too_many_link_joins(uow, address, now)
        grant = await uow.links.find_by_token_hash(hash_link_token(token))
    if grant is None:
        await _record_failure(uow, guesses, throttling, now)
        raise JoinRefused(LinkProblem.UNKNOWN)
    if (problem := grant.problem(now)) is not None:
        if problem is LinkProblem.UNKNOWN_ROLE:
            log.warning(
                "an invite link gives a role this service does not know",
                extra={"link_id": str(grant.link_id), "roles": list(grant.roles)},
            )
        raise JoinRefused(problem)
    return grant


async def _refuse_if_too_many_link_joins(uow: UsersUnitOfWork, address: str, now: datetime) -> None:
    throttle = await uow.throttles.get(link_join_address_key(address))
    if throttle is not None and (wait := throttle.retry_after(now)) is not None:
        raise LinkJoinsThrottled(wait)


async def join_by_link(
    uow: UsersUnitOfWork,
    token: str,
    form: LinkJoinForm,
    *,
    address: str,
    policy: AccountPolicy,
    hasher: PasswordHasher,
    throttling: ThrottlePolicy,
    now: datetime,
) -> User:
    """Spend one use of an invite link: a pending account (not verified: a link proves no
    mailbox) with the link's roles, the use counted, and UserCreated with the link's id, in one
    commit. The link's row stays locked from the check to the commit (on SQLite the transaction
    holds the write lock from its start), so concurrent redemptions never exceed the cap, and
    the address's domain is checked again there, against the link as it is then."""
    grant = await invite_link_for_token(uow, token, address=address, throttling=throttling, now=now)
    # Checked before the slow hashing, to answer a mistyped field at once...
    checked = _account_for_link(grant, form, policy)
    assert checked.password is not None
    password_hash = await hasher.hash(checked.password)
    joins_key = link_join_address_key(address)
    try:
        async with uow:
            locked = await uow.links.find_by_token_hash(hash_link_token(token), for_update=True)
            if locked is None:
                raise JoinRefused(LinkProblem.UNKNOWN)  # regenerated meanwhile
            if (problem := locked.problem(now)) is not None:
                raise JoinRefused(problem)  # used up or revoked meanwhile
            # ...and again, domain included, against the locked link: the one that counts.
            checked = _account_for_link(locked, form, policy)
            joins = await uow.throttles.lock_or_create(LoginThrottle.fresh(joins_key, now))
            if (wait := joins.retry_after(now)) is not None:
                raise LinkJoinsThrottled(wait)
            await _refuse_duplicates(uow, email=checked.email, username=checked.username)
            user = User.register(checked, password_hash=password_hash, now=now)
            uow.users.add(user)
            locked.use(now)
            joins.record_failure(
                now, limit=throttling.max_link_joins_per_address, policy=throttling
            )
            uow.emit(_created(user, invite_link_id=locked.link_id))
            await uow.commit()
    except DuplicateField as duplicate:
        if "email" in duplicate.fields:
            # Counted like an account made: otherwise the form would tell, without limit,
            # which addresses have an account here.
            await _record_failure(
                uow, [(joins_key, throttling.max_link_joins_per_address)], throttling, now
            )
        raise
    log.info(
        "account created through an invite link",
        extra={"user_id": str(user.id), "link_id": str(grant.link_id)},
    )
    return user


def _account_for_link(grant: InviteLinkGrant, form: LinkJoinForm, policy: AccountPolicy) -> NewUser:
    """The account a usable link makes, checked: the address typed (at the link's domain, if
    it has one), the link's roles, not verified; InvalidFields naming every problem."""
    new = NewUser(
        email=form.email,
        name=form.name,
        username=form.username,
        password=form.password,
        roles=grant.roles,
        verified=False,
    )
    problems: dict[str, str] = {}
    checked = new
    try:
        checked = new.checked(policy.passwords)
    except InvalidFields as invalid:
        problems = dict(invalid.problems)
    if "email" not in problems:
        try:
            grant.check_address(rules.email_address(form.email))
        except FieldProblem as problem:
            problems["email"] = str(problem)
    if problems:
        raise InvalidFields(problems)
    return checked


async def record_invite_link(uow: UsersUnitOfWork, event: Envelope[InviteLinkIssued]) -> None:
    """Learn (or renew: a regenerate replaces the token's hash) an invite link."""
    data = event.data
    terms: dict[str, Any] = {
        "token_hash": data.token_hash,
        "issued_at": data.issued_at,
        "expires_at": data.expires_at,
        "max_uses": data.max_uses,
        "allowed_domain": data.allowed_domain,
        "roles": data.roles,
    }
    async with uow:
        if not await uow.claim(INVITATIONS_CONSUMER, event.event_id):
            return
        grant = await uow.links.get(data.link_id)
        if grant is None:
            uow.links.add(InviteLinkGrant.issued(data.link_id, **terms))
        else:
            grant.issue_again(**terms)
        await uow.commit()


async def record_invite_link_revocation(
    uow: UsersUnitOfWork, event: Envelope[InviteLinkRevoked]
) -> None:
    """Close the link at once; remember a revocation that overtook its issue."""
    data = event.data
    async with uow:
        if not await uow.claim(INVITATIONS_CONSUMER, event.event_id):
            return
        grant = await uow.links.get(data.link_id)
        if grant is None:
            uow.links.add(InviteLinkGrant.revoked_early(data.link_id))
        else:
            grant.revoke()
        await uow.commit()


# Activation (from the auth-listener)


@dataclass(frozen=True)
class Activation:
    """A pending account that became active, once committed."""

    created_at: datetime
    activated_at: datetime

    @property
    def seconds_to_activate(self) -> float:
        return max(0.0, (self.activated_at - self.created_at).total_seconds())


async def apply_activation(
    uow: UsersUnitOfWork, event: Envelope[UserActivated], *, now: datetime
) -> Activation | None:
    """Record the first login; an Activation when this made a pending account active."""
    activation = None
    async with uow:
        if not await uow.claim(ACTIVATIONS_CONSUMER, event.event_id):
            return None
        user = await uow.users.get(event.data.user_id, for_update=True)
        if user is None:
            log.warning(
                "activation of an unknown account", extra={"user_id": str(event.data.user_id)}
            )
        else:
            was_pending = user.status is UserStatus.PENDING
            if user.record_first_login(event.data.activated_at):
                user.updated_at = now
                uow.emit(_updated(user, now, ["status"]))
            if was_pending and user.status is UserStatus.ACTIVE:
                activation = Activation(user.created_at, event.data.activated_at)
        await uow.commit()
    return activation


# Avatars


async def set_avatar(
    uow: UsersUnitOfWork,
    user_id: uuid.UUID,
    data: bytes,
    *,
    actor: Principal,
    processor: AvatarProcessor,
    now: datetime,
) -> Avatar:
    _may_change_avatar(actor, user_id)
    await get_user(uow, user_id)  # before spending time on decoding
    image = await processor.normalise(data)
    async with uow:
        user = await _existing(uow, user_id, for_update=True)
        avatar = Avatar.of(user_id, image.content, image.media_type, now)
        await uow.avatars.put(avatar)
        user.avatar_etag = avatar.etag
        uow.emit(_updated(user, now, ["avatar"]))  # the snapshot is the same: for the audit
        await uow.commit()
    return avatar


async def reset_avatar(
    uow: UsersUnitOfWork, user_id: uuid.UUID, *, actor: Principal, now: datetime
) -> None:
    _may_change_avatar(actor, user_id)
    async with uow:
        user = await _existing(uow, user_id, for_update=True)
        had_one = user.avatar_etag is not None
        await uow.avatars.delete(user_id)
        user.avatar_etag = None
        if had_one:
            uow.emit(_updated(user, now, ["avatar"]))
        await uow.commit()


async def avatar_of(uow: UsersUnitOfWork, user_id: uuid.UUID) -> tuple[User, Avatar | None]:
    async with uow:
        user = await _existing(uow, user_id)
        return user, await uow.avatars.get(user_id)


def _may_change_avatar(actor: Principal, user_id: uuid.UUID) -> None:
    if not (actor.is_admin or actor.user_id == user_id):
        raise NotAllowed("only an admin or the account's owner may change its picture")


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


def _created(
    user: User,
    invitation_id: uuid.UUID | None = None,
    *,
    invite_link_id: uuid.UUID | None = None,
) -> UserCreated:
    return UserCreated(
        **_snapshot(user), invitation_id=invitation_id, invite_link_id=invite_link_id
    )


def _updated(user: User, now: datetime, changes: Iterable[str]) -> UserUpdated:
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
