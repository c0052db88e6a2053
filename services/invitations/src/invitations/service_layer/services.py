"""Use cases of the invitations service. Each runs in one unit of work: state and events
commit together or not at all."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from invitations.domain.addresses import AddressProblem, ParsedAddress, parse_addresses
from invitations.domain.imports import MAX_IMPORT_ROWS
from invitations.domain.model import (
    DEFAULT_ROLES,
    DailyQuota,
    Invitation,
    InvitationStatus,
    Inviter,
    InviterSettings,
    Member,
    ReminderRule,
    TokenMinter,
    email_key,
    invitation_roles,
)
from invitations.service_layer.ports import MailerHeartbeat
from invitations.service_layer.unit_of_work import (
    InvitationPage,
    InvitationQuery,
    InvitationsUnitOfWork,
)
from onboarding_shared.contract import (
    AcceptanceEmailRequested,
    EmailDeferred,
    EmailFailed,
    EmailKind,
    EmailSent,
    Envelope,
    InvitationAccepted,
    InvitationIssued,
    InvitationRequested,
    InvitationRevoked,
    Role,
    UserCreated,
    UserUpdated,
)
from onboarding_shared.messaging.queues import INVITATIONS_EMAIL_OUTCOMES, INVITATIONS_MEMBERS
from onboarding_shared.unit_of_work import once_per_event


@dataclass(frozen=True)
class InvitePolicy:
    workspace_name: str
    public_url: str
    default_ttl_hours: int
    min_ttl_hours: int
    max_ttl_hours: int
    max_addresses_per_request: int
    max_invitations_per_day: int
    reminders: ReminderRule = field(default_factory=ReminderRule)
    max_addresses_per_import: int = MAX_IMPORT_ROWS  # rows of one CSV file
    links_may_never_expire: bool = True


class InviteOutcome(StrEnum):
    QUEUED = "queued"
    INVALID = "invalid"
    ALREADY_MEMBER = "already_member"
    ALREADY_INVITED = "already_invited"
    DUPLICATE_IN_REQUEST = "duplicate_in_request"


@dataclass(frozen=True)
class InviteResult:
    input: str
    outcome: InviteOutcome
    email: str | None = None
    invitation_id: uuid.UUID | None = None
    reason: str | None = None


@dataclass(frozen=True)
class InviteCommand:
    emails: str | list[str]
    inviter_id: uuid.UUID | None = None
    message: str | None = None
    expires_in_hours: int | None = None
    # What the accounts created by joining get; only an admin may hand out "admin".
    roles: tuple[str, ...] = DEFAULT_ROLES
    inviter_is_admin: bool = False
    notify_inviter: bool = True  # email the inviter when it is accepted


class InviteRefused(Exception):
    """The whole request is refused and nothing was created."""


class TooManyAddresses(InviteRefused):
    pass


class InvalidExpiry(InviteRefused):
    pass


class DailyLimitReached(InviteRefused):
    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class NotFound(Exception):
    pass


async def invite(
    uow: InvitationsUnitOfWork,
    command: InviteCommand,
    *,
    policy: InvitePolicy,
    minter: TokenMinter,
    now: datetime,
) -> list[InviteResult]:
    """One result per distinct address, in input order; invitations only for the ones queued."""
    ttl_hours = ttl_hours_for(command.expires_in_hours, policy)
    roles = invitation_roles(command.roles, inviter_is_admin=command.inviter_is_admin)
    addresses = parse_addresses(command.emails)
    if len(addresses) > policy.max_addresses_per_request:
        raise TooManyAddresses(
            f"{len(addresses)} addresses in one request; "
            f"the limit is {policy.max_addresses_per_request}"
        )
    async with uow:
        results = await triage_within_quota(uow, addresses, policy, now)
        inviter = await inviter_of(uow, command.inviter_id)
        terms = IssueTerms(ttl_hours, inviter, command.message, command.notify_inviter)
        results = [
            issue_invitation(uow, result, terms, roles=roles, policy=policy, minter=minter, now=now)
            if result.outcome is InviteOutcome.QUEUED
            else result
            for result in results
        ]
        await uow.commit()
    return results


async def triage_within_quota(
    uow: InvitationsUnitOfWork, addresses: list[ParsedAddress], policy: InvitePolicy, now: datetime
) -> list[InviteResult]:
    """Triage the addresses and take every one to invite from the day's quota, or refuse them
    all (DailyLimitReached). The day is locked first: that serialises concurrent invitations,
    so limits and duplicate checks hold."""
    quota = await uow.quotas.lock_day(utc_day(now))
    results = await triage(uow, addresses, now)
    _take_from_quota(quota, queued_count(results), policy, now)
    return results


def queued_count(results: list[InviteResult]) -> int:
    return sum(result.outcome is InviteOutcome.QUEUED for result in results)


def _take_from_quota(quota: DailyQuota, count: int, policy: InvitePolicy, now: datetime) -> None:
    """Count ``count`` more invitations against the day, or refuse them all."""
    if not quota.take(count, limit=policy.max_invitations_per_day):
        raise DailyLimitReached(
            f"the workspace may send {policy.max_invitations_per_day} invitations a day; "
            f"{quota.used} already went out today and this request has {count}",
            retry_after_seconds=seconds_to_next_day(now),
        )


async def triage(
    uow: InvitationsUnitOfWork, addresses: list[ParsedAddress], now: datetime
) -> list[InviteResult]:
    keys = [a.key for a in addresses if a.key and a.problem is None]
    members = await uow.members.by_email(keys)
    invited = {
        invitation.email_key: invitation for invitation in await uow.invitations.open_for(keys, now)
    }
    return [_triage_one(address, members, invited) for address in addresses]


def _triage_one(
    address: ParsedAddress, members: dict[str, Member], invited: dict[str, Invitation]
) -> InviteResult:
    if address.problem is AddressProblem.INVALID or address.key is None:
        return InviteResult(address.given, InviteOutcome.INVALID, reason=address.reason)
    if address.problem is AddressProblem.DUPLICATE_IN_REQUEST:
        return InviteResult(
            address.given, InviteOutcome.DUPLICATE_IN_REQUEST, address.email, reason=address.reason
        )
    if member := members.get(address.key):
        reason = (
            "account is deactivated" if member.status == "deactivated" else "already has an account"
        )
        return InviteResult(
            address.given, InviteOutcome.ALREADY_MEMBER, address.email, reason=reason
        )
    if open_invitation := invited.get(address.key):
        return InviteResult(
            address.given,
            InviteOutcome.ALREADY_INVITED,
            address.email,
            open_invitation.id,
            reason=f"invited already, until {open_invitation.expires_at:%Y-%m-%d %H:%M} UTC; "
            "resend it instead",
        )
    return InviteResult(address.given, InviteOutcome.QUEUED, address.email)


@dataclass(frozen=True)
class IssueTerms:
    """What every invitation of one request, or of one CSV file, is issued with."""

    ttl_hours: int
    inviter: Inviter | None
    message: str | None
    notify_inviter: bool


def issue_invitation(
    uow: InvitationsUnitOfWork,
    result: InviteResult,
    terms: IssueTerms,
    *,
    roles: list[Role],
    policy: InvitePolicy,
    minter: TokenMinter,
    now: datetime,
) -> InviteResult:
    assert result.email is not None
    invitation = Invitation.issue(
        result.email,
        now=now,
        ttl_hours=terms.ttl_hours,
        minter=minter,
        inviter=terms.inviter,
        message=terms.message,
        roles=roles,
        notify_inviter=terms.notify_inviter,
        reminders=policy.reminders,
    )
    uow.invitations.add(invitation)
    uow.emit(_issued(invitation))
    uow.emit(_requested(invitation, policy, minter))
    return InviteResult(result.input, InviteOutcome.QUEUED, result.email, invitation.id)


def _issued(invitation: Invitation) -> InvitationIssued:
    """The public fact, for every service that keeps a copy: no link, only its hash."""
    return InvitationIssued(
        invitation_id=invitation.id,
        email=invitation.email,
        expires_at=invitation.expires_at,
        token_hash=invitation.token_hash,
        inviter_name=invitation.inviter_name,
        roles=list(invitation.roles),
    )


def _requested(
    invitation: Invitation, policy: InvitePolicy, minter: TokenMinter, *, reminder: bool = False
) -> InvitationRequested:
    """For the mailer alone (the mail exchange): the link itself."""
    return InvitationRequested(
        reminder=reminder,
        invitation_id=invitation.id,
        email=invitation.email,
        workspace_name=policy.workspace_name,
        join_url=f"{policy.public_url}/join/{minter.token(invitation.token_salt)}",
        expires_at=invitation.expires_at,
        inviter_name=invitation.inviter_name,
        message=invitation.message,
    )


async def inviter_of(uow: InvitationsUnitOfWork, inviter_id: uuid.UUID | None) -> Inviter | None:
    if inviter_id is None:
        return None
    member = await uow.members.get(inviter_id)
    return Inviter(user_id=inviter_id, name=member.name if member else None)


def ttl_hours_for(requested: int | None, policy: InvitePolicy) -> int:
    hours = policy.default_ttl_hours if requested is None else requested
    if not policy.min_ttl_hours <= hours <= policy.max_ttl_hours:
        raise InvalidExpiry(
            f"expires_in_hours must be between {policy.min_ttl_hours} and {policy.max_ttl_hours}"
        )
    return hours


def utc_day(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%d")


def seconds_to_next_day(now: datetime) -> int:
    utc = now.astimezone(UTC)
    tomorrow = (utc + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((tomorrow - utc).total_seconds()))


async def list_invitations(
    uow: InvitationsUnitOfWork, query: InvitationQuery, *, now: datetime
) -> InvitationPage:
    async with uow:
        return await uow.invitations.list(query, now)


async def count_by_status(
    uow: InvitationsUnitOfWork, *, now: datetime
) -> dict[InvitationStatus, int]:
    async with uow:
        return await uow.invitations.count_by_status(now)


async def get_invitation(uow: InvitationsUnitOfWork, invitation_id: uuid.UUID) -> Invitation:
    async with uow:
        return await _existing(uow, invitation_id)


async def resend(
    uow: InvitationsUnitOfWork,
    invitation_id: uuid.UUID,
    *,
    policy: InvitePolicy,
    minter: TokenMinter,
    now: datetime,
) -> Invitation:
    async with uow:
        invitation = await _existing(uow, invitation_id, for_update=True)
        invitation.resend(now=now, minter=minter)
        uow.emit(_issued(invitation))
        uow.emit(_requested(invitation, policy, minter))
        await uow.commit()
    return invitation


REMINDER_BATCH = 100


async def send_due_reminders(
    uow: InvitationsUnitOfWork, *, policy: InvitePolicy, minter: TokenMinter, now: datetime
) -> int:
    """Ask the mailer for every reminder due, in batches; return how many. Each invitation's
    reminder is taken, marked sent and requested in one commit, so a restart resumes where
    this stopped and two replicas never take the same one."""
    reminded = 0
    while True:
        async with uow:
            due = await uow.invitations.due_reminders(now, limit=REMINDER_BATCH)
            for invitation in due:
                invitation.remind(now)
                uow.emit(_requested(invitation, policy, minter, reminder=True))
            await uow.commit()
        reminded += len(due)
        if len(due) < REMINDER_BATCH:
            return reminded


async def revoke(
    uow: InvitationsUnitOfWork, invitation_id: uuid.UUID, *, now: datetime
) -> Invitation:
    async with uow:
        invitation = await _existing(uow, invitation_id, for_update=True)
        if invitation.revoke(now=now):
            uow.emit(_revoked(invitation, now))
            await uow.commit()
    return invitation


def _revoked(invitation: Invitation, now: datetime) -> InvitationRevoked:
    return InvitationRevoked(
        invitation_id=invitation.id, token_hash=invitation.token_hash, revoked_at=now
    )


async def _existing(
    uow: InvitationsUnitOfWork, invitation_id: uuid.UUID, *, for_update: bool = False
) -> Invitation:
    invitation = await uow.invitations.get(invitation_id, for_update=for_update)
    if invitation is None:
        raise NotFound(f"no invitation {invitation_id}")
    return invitation


async def record_email_outcome(
    uow: InvitationsUnitOfWork,
    event: Envelope[EmailSent] | Envelope[EmailDeferred] | Envelope[EmailFailed],
) -> None:
    """Once per event, and only for invitation emails: apply what the mailer reports."""
    if event.data.kind is EmailKind.INVITATION:
        await _record_invitation_email_outcome(uow, event)


@once_per_event(INVITATIONS_EMAIL_OUTCOMES)
async def _record_invitation_email_outcome(
    uow: InvitationsUnitOfWork,
    event: Envelope[EmailSent] | Envelope[EmailDeferred] | Envelope[EmailFailed],
) -> None:
    invitation = await uow.invitations.get(event.data.reference_id, for_update=True)
    if invitation is not None:
        _apply_outcome(invitation, event.data)


def _apply_outcome(
    invitation: Invitation, outcome: EmailSent | EmailDeferred | EmailFailed
) -> None:
    if isinstance(outcome, EmailSent):
        invitation.record_sent(at=outcome.sent_at, attempts=outcome.attempts)
    elif isinstance(outcome, EmailDeferred):
        # The mailer keeps trying: the invitation shows it is retrying, why, and until when.
        invitation.record_deferred(
            reason=outcome.reason,
            attempts=outcome.attempts,
            next_attempt_at=outcome.next_attempt_at,
            at=outcome.deferred_at,
        )
    else:
        invitation.record_failed(reason=outcome.reason, attempts=outcome.attempts)


@once_per_event(INVITATIONS_MEMBERS)
async def record_member(
    uow: InvitationsUnitOfWork,
    event: Envelope[UserCreated] | Envelope[UserUpdated],
    *,
    policy: InvitePolicy,
) -> None:
    """Keep our copy of the account; a new account accepts its invitation (announced, and
    told to its inviter) and closes the other open invitations to the same address."""
    data = event.data
    await _upsert_member(uow, data, at=event.occurred_at)
    if isinstance(data, UserCreated):
        await _close_invitations_of(uow, data, now=event.occurred_at, policy=policy)
        await _count_link_use(uow, data)


async def _upsert_member(
    uow: InvitationsUnitOfWork, data: UserCreated | UserUpdated, *, at: datetime
) -> None:
    member = await uow.members.get(data.user_id)
    if member is None:
        uow.members.add(
            Member.learn(data.user_id, email=data.email, name=data.name, status=data.status, at=at)
        )
    else:
        member.apply(email=data.email, name=data.name, status=data.status, at=at)


async def _close_invitations_of(
    uow: InvitationsUnitOfWork, data: UserCreated, *, now: datetime, policy: InvitePolicy
) -> None:
    accepted = (
        await uow.invitations.get(data.invitation_id, for_update=True)
        if data.invitation_id
        else None
    )
    if accepted is not None and accepted.accept(user_id=data.user_id, at=now):
        await _announce_acceptance(uow, accepted, data, policy)
    for invitation in await uow.invitations.open_for([email_key(data.email)], now, for_update=True):
        if invitation.id != data.invitation_id and invitation.revoke(now=now):
            uow.emit(_revoked(invitation, now))


async def _count_link_use(uow: InvitationsUnitOfWork, data: UserCreated) -> None:
    """The users service enforces a link's cap; this count is what the admins see."""
    if data.invite_link_id is not None and (link := await uow.links.get(data.invite_link_id)):
        link.record_use()


async def _announce_acceptance(
    uow: InvitationsUnitOfWork, invitation: Invitation, member: UserCreated, policy: InvitePolicy
) -> None:
    """The public fact, and an email to the inviter unless they turned it off."""
    assert invitation.accepted_at is not None
    uow.emit(
        InvitationAccepted(
            invitation_id=invitation.id,
            user_id=member.user_id,
            email=invitation.email,
            inviter_id=invitation.inviter_id,
            accepted_at=invitation.accepted_at,
        )
    )
    if invitation.inviter_id is None:
        return
    settings = await uow.inviter_settings.get(invitation.inviter_id)
    inviter = await uow.members.get(invitation.inviter_id)
    if not invitation.should_notify(settings) or inviter is None or not inviter.reachable:
        return
    uow.emit(
        AcceptanceEmailRequested(
            invitation_id=invitation.id,
            recipient=inviter.address,
            inviter_name=inviter.name,
            member_name=member.name,
            member_email=member.email,
            workspace_name=policy.workspace_name,
            console_url=f"{policy.public_url}/",
            accepted_at=invitation.accepted_at,
        )
    )


async def inviter_settings(uow: InvitationsUnitOfWork, user_id: uuid.UUID) -> InviterSettings:
    async with uow:
        return await uow.inviter_settings.get(user_id) or InviterSettings(user_id)


async def change_inviter_settings(
    uow: InvitationsUnitOfWork, user_id: uuid.UUID, *, notify_on_acceptance: bool
) -> InviterSettings:
    async with uow:
        settings = await uow.inviter_settings.get(user_id)
        if settings is None:
            settings = InviterSettings(user_id)
            uow.inviter_settings.add(settings)
        settings.notify_on_acceptance = notify_on_acceptance
        await uow.commit()
    return settings


class NotYourInvitation(Exception):
    """Only the inviter decides whether they hear of their invitation's acceptance."""


async def change_acceptance_notice(
    uow: InvitationsUnitOfWork,
    invitation_id: uuid.UUID,
    *,
    notify_inviter: bool,
    actor_id: uuid.UUID,
) -> Invitation:
    async with uow:
        invitation = await _existing(uow, invitation_id, for_update=True)
        if invitation.inviter_id != actor_id:
            raise NotYourInvitation("only the inviter can change whether they are told")
        invitation.notify_inviter = notify_inviter
        await uow.commit()
    return invitation


@dataclass(frozen=True)
class SmtpReport:
    smtp_configured: bool | None  # None: the mailer has not been heard from
    warning: str | None


def smtp_report(mailer: MailerHeartbeat) -> SmtpReport:
    """What to tell the admin about email delivery, from the mailer's latest heartbeat."""
    kept = "invitations are kept and will be emailed"
    if not mailer.heard or not mailer.reachable:
        return SmtpReport(
            mailer.smtp_configured if mailer.heard else None,
            f"The mailer cannot be reached (no recent heartbeat): {kept} once it is running.",
        )
    if not mailer.smtp_configured:
        return SmtpReport(False, f"SMTP is not configured: {kept} once SMTP is set up.")
    if mailer.last_attempt_ok is False:
        return SmtpReport(
            True, f"The SMTP server did not answer the last attempt: {kept} when it does."
        )
    return SmtpReport(True, None)
