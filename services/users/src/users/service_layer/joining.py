"""Joining: an account made with an invitation's single-use link, or with a reusable invite
link; and the grants behind those links, learnt from the invitations service's events (only
the tokens' hashes)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from onboarding_shared.contract import (
    Envelope,
    InvitationIssued,
    InvitationRevoked,
    InviteLinkIssued,
    InviteLinkRevoked,
)
from onboarding_shared.messaging.queues import USERS_INVITATIONS
from onboarding_shared.unit_of_work import once_per_event
from users.domain import rules
from users.domain.invitations import InvitationGrant, LinkProblem
from users.domain.invite_links import InviteLinkGrant
from users.domain.model import NewUser, User
from users.domain.passwords import hash_link_token
from users.domain.rules import FieldProblem, InvalidFields
from users.domain.throttling import (
    LoginThrottle,
    ThrottlePolicy,
    join_address_key,
    link_join_address_key,
)
from users.service_layer.accounts import AccountPolicy, refuse_duplicates, user_created
from users.service_layer.errors import (
    JoinRefused,
    JoinThrottled,
    LinkJoinsThrottled,
    LoginThrottled,
)
from users.service_layer.ports import PasswordHasher
from users.service_layer.throttles import record_failure, refuse_if_throttled
from users.service_layer.unit_of_work import DuplicateField, UsersUnitOfWork

log = logging.getLogger(__name__)

GrantT = TypeVar("GrantT", InvitationGrant, InviteLinkGrant)


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


# Joining through an invitation


async def invitation_for_link(
    uow: UsersUnitOfWork, token: str, *, address: str, throttling: ThrottlePolicy, now: datetime
) -> InvitationGrant:
    """The usable grant behind a join link, or JoinRefused / JoinThrottled. Unknown links count
    against the client address, so guessing them is slowed down."""
    key = join_address_key(address)
    async with uow:
        try:
            await refuse_if_throttled(uow, [(key, throttling.max_join_failures_per_address)], now)
        except LoginThrottled as throttled:
            raise JoinThrottled(throttled.retry_after) from None
        grant = await uow.grants.find_by_token_hash(hash_link_token(token))
    if grant is None:
        await record_failure(
            uow, [(key, throttling.max_join_failures_per_address)], throttling, now
        )
        raise JoinRefused(LinkProblem.UNKNOWN)
    return _usable(grant, now, invitation_id=str(grant.invitation_id))


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
        await refuse_duplicates(uow, email=checked.email, username=checked.username)
        user = User.register(checked, password_hash=password_hash, now=now)
        uow.users.add(user)
        locked.use(now)
        uow.emit(user_created(user, invitation_id=locked.invitation_id))
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


@once_per_event(USERS_INVITATIONS)
async def record_invitation(uow: UsersUnitOfWork, event: Envelope[InvitationIssued]) -> None:
    """Learn (or renew) the grant of an invitation: only the token's hash is kept."""
    data = event.data
    terms: dict[str, Any] = {
        "email": data.email,
        "token_hash": data.token_hash,
        "expires_at": data.expires_at,
        "roles": data.roles,
    }
    grant = await uow.grants.get(data.invitation_id)
    if grant is None:
        uow.grants.add(InvitationGrant.requested(data.invitation_id, **terms))
    else:
        grant.request_again(**terms)


@once_per_event(USERS_INVITATIONS)
async def record_revocation(uow: UsersUnitOfWork, event: Envelope[InvitationRevoked]) -> None:
    """Close the grant at once; remember a revocation that overtook its request."""
    data = event.data
    grant = await uow.grants.get(data.invitation_id)
    if grant is None:
        uow.grants.add(
            InvitationGrant.revoked_early(data.invitation_id, token_hash=data.token_hash)
        )
    else:
        grant.revoke()


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
            await refuse_if_throttled(uow, guesses, now)
        except LoginThrottled as throttled:
            raise JoinThrottled(throttled.retry_after) from None
        await _refuse_if_too_many_link_joins(uow, address, now)
        grant = await uow.links.find_by_token_hash(hash_link_token(token))
    if grant is None:
        await record_failure(uow, guesses, throttling, now)
        raise JoinRefused(LinkProblem.UNKNOWN)
    return _usable(grant, now, link_id=str(grant.link_id))


def _usable(grant: GrantT, now: datetime, **names: str) -> GrantT:
    """The grant, or JoinRefused saying why its link cannot be used now."""
    if (problem := grant.problem(now)) is not None:
        if problem is LinkProblem.UNKNOWN_ROLE:
            # Not the invitee's doing: an operator has to learn of it.
            log.warning(
                "a join link gives a role this service does not know",
                extra={**names, "roles": list(grant.roles)},
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
    try:
        user = await _spend_link_use(
            uow,
            token,
            form,
            password_hash,
            address=address,
            policy=policy,
            throttling=throttling,
            now=now,
        )
    except DuplicateField as duplicate:
        if "email" in duplicate.fields:
            await _count_taken_address(uow, address, throttling, now)
        raise
    extra = {"user_id": str(user.id), "link_id": str(grant.link_id)}
    log.info("account created through an invite link", extra=extra)
    return user


async def _count_taken_address(
    uow: UsersUnitOfWork, address: str, throttling: ThrottlePolicy, now: datetime
) -> None:
    """Counted like an account made: otherwise the form would tell, without limit, which
    addresses have an account here."""
    joins = [(link_join_address_key(address), throttling.max_link_joins_per_address)]
    await record_failure(uow, joins, throttling, now)


async def _spend_link_use(
    uow: UsersUnitOfWork,
    token: str,
    form: LinkJoinForm,
    password_hash: str,
    *,
    address: str,
    policy: AccountPolicy,
    throttling: ThrottlePolicy,
    now: datetime,
) -> User:
    """The account, the link's use and the address's count of link joins, in one commit."""
    async with uow:
        locked = await uow.links.find_by_token_hash(hash_link_token(token), for_update=True)
        if locked is None:
            raise JoinRefused(LinkProblem.UNKNOWN)  # regenerated meanwhile
        if (problem := locked.problem(now)) is not None:
            raise JoinRefused(problem)  # used up or revoked meanwhile
        # ...and again, domain included, against the locked link: the one that counts.
        checked = _account_for_link(locked, form, policy)
        key = link_join_address_key(address)
        joins = await uow.throttles.lock_or_create(LoginThrottle.fresh(key, now))
        if (wait := joins.retry_after(now)) is not None:
            raise LinkJoinsThrottled(wait)
        await refuse_duplicates(uow, email=checked.email, username=checked.username)
        user = User.register(checked, password_hash=password_hash, now=now)
        uow.users.add(user)
        locked.use(now)
        joins.record_failure(now, limit=throttling.max_link_joins_per_address, policy=throttling)
        uow.emit(user_created(user, invite_link_id=locked.link_id))
        await uow.commit()
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


@once_per_event(USERS_INVITATIONS)
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
    grant = await uow.links.get(data.link_id)
    if grant is None:
        uow.links.add(InviteLinkGrant.issued(data.link_id, **terms))
    else:
        grant.issue_again(**terms)


@once_per_event(USERS_INVITATIONS)
async def record_invite_link_revocation(
    uow: UsersUnitOfWork, event: Envelope[InviteLinkRevoked]
) -> None:
    """Close the link at once; remember a revocation that overtook its issue."""
    data = event.data
    grant = await uow.links.get(data.link_id)
    if grant is None:
        uow.links.add(InviteLinkGrant.revoked_early(data.link_id))
    else:
        grant.revoke()
