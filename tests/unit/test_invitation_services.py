"""The invitations service layer with in-memory fakes: per-address results, limits, resend,
revoke, accepting on UserCreated, and the SMTP warning."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from invitations.adapters.mailer_status import (
    HeartbeatMailerStatus,
    HeartbeatSnapshot,
    mailer_heartbeats,
)
from invitations.domain.model import (
    DailyQuota,
    InvalidRoles,
    Invitation,
    InvitationError,
    InvitationStatus,
    InviterSettings,
    Member,
    ReminderRule,
    RoleNotAllowed,
    TokenMinter,
)
from invitations.service_layer import services
from invitations.service_layer.services import (
    DailyLimitReached,
    InvalidExpiry,
    InviteCommand,
    InviteOutcome,
    InvitePolicy,
    TooManyAddresses,
)
from invitations.service_layer.unit_of_work import (
    InvitationPage,
    InvitationQuery,
    InvitationRepository,
    InvitationsUnitOfWork,
    InviterSettingsRepository,
    MemberRepository,
    QuotaRepository,
)
from onboarding_shared.contract import (
    EmailDeferred,
    EmailFailed,
    EmailKind,
    EmailSent,
    Envelope,
    MailerStatus,
    UserCreated,
    new_event,
)
from tests.support.fakes import FakeMessagingUnitOfWork

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
MINTER = TokenMinter(b"s" * 32)
POLICY = InvitePolicy(
    workspace_name="Acme",
    public_url="https://chat.acme.test",
    default_ttl_hours=168,
    min_ttl_hours=1,
    max_ttl_hours=720,
    max_addresses_per_request=5,
    max_invitations_per_day=10,
)


class FakeInvitations(InvitationRepository):
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Invitation] = {}

    def add(self, invitation: Invitation) -> None:
        self.rows[invitation.id] = invitation

    async def get(self, invitation_id: uuid.UUID, *, for_update: bool = False) -> Invitation | None:
        return self.rows.get(invitation_id)  # one task at a time: nothing to lock

    async def open_for(
        self, email_keys: Iterable[str], now: datetime, *, for_update: bool = False
    ) -> list[Invitation]:
        keys = set(email_keys)
        return [i for i in self.rows.values() if i.email_key in keys and i.is_open_at(now)]

    async def due_reminders(self, now: datetime, limit: int) -> list[Invitation]:
        due = sorted(
            (i for i in self.rows.values() if i.reminder_due(now)),
            key=lambda i: i.remind_at or now,
        )
        return due[:limit]

    async def list(self, query: InvitationQuery, now: datetime) -> InvitationPage:
        items = [i for i in self.rows.values() if query.status in (None, i.status_at(now))]
        return InvitationPage(
            items=items[query.offset : query.offset + query.limit], total=len(items)
        )


class FakeMembers(MemberRepository):
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Member] = {}

    def add(self, member: Member) -> None:
        self.rows[member.user_id] = member

    async def get(self, user_id: uuid.UUID) -> Member | None:
        return self.rows.get(user_id)

    async def by_email(self, email_keys: Iterable[str]) -> dict[str, Member]:
        keys = set(email_keys)
        return {m.email_key: m for m in self.rows.values() if m.email_key in keys}


class FakeQuotas(QuotaRepository):
    def __init__(self) -> None:
        self.days: dict[str, DailyQuota] = {}

    async def lock_day(self, day: str) -> DailyQuota:
        return self.days.setdefault(day, DailyQuota(day=day))


class FakeInviterSettings(InviterSettingsRepository):
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, InviterSettings] = {}

    def add(self, settings: InviterSettings) -> None:
        self.rows[settings.user_id] = settings

    async def get(self, user_id: uuid.UUID) -> InviterSettings | None:
        return self.rows.get(user_id)


class FakeUnitOfWork(FakeMessagingUnitOfWork, InvitationsUnitOfWork):
    invitations: FakeInvitations
    members: FakeMembers
    quotas: FakeQuotas
    inviter_settings: FakeInviterSettings

    def __init__(self) -> None:
        super().__init__()
        self.invitations = FakeInvitations()
        self.members = FakeMembers()
        self.quotas = FakeQuotas()
        self.inviter_settings = FakeInviterSettings()
        self._saved_quota: dict[str, int] = {}

    async def commit(self) -> None:
        await super().commit()
        self._saved_quota = {day: q.used for day, q in self.quotas.days.items()}

    async def rollback(self) -> None:
        await super().rollback()
        for day, quota in self.quotas.days.items():  # undo what an uncommitted take() did
            quota.used = self._saved_quota.get(day, 0)


async def invite(
    uow: FakeUnitOfWork, emails: str | list[str], **fields: object
) -> list[services.InviteResult]:
    command = InviteCommand(emails=emails, **fields)  # type: ignore[arg-type]
    return await services.invite(uow, command, policy=POLICY, minter=MINTER, now=NOW)


def outcomes(results: list[services.InviteResult]) -> list[str]:
    return [r.outcome.value for r in results]


async def test_each_address_gets_a_result_in_input_order_and_only_queued_ones_are_created() -> None:
    uow = FakeUnitOfWork()
    uow.members.add(Member(uuid.uuid4(), "grace@example.com", "Grace", "active", NOW))
    results = await invite(uow, "ada@example.com, Grace@example.com, nope, ADA@example.com")
    assert outcomes(results) == ["queued", "already_member", "invalid", "duplicate_in_request"]
    assert len(uow.invitations.rows) == 1
    [requested] = uow.events("InvitationRequested")
    assert requested.data.email == "ada@example.com"
    assert requested.data.join_url.startswith("https://chat.acme.test/join/")
    assert requested.data.invitation_id == results[0].invitation_id


async def test_an_open_invitation_makes_the_address_already_invited_until_it_expires() -> None:
    uow = FakeUnitOfWork()
    [first] = await invite(uow, "ada@example.com", expires_in_hours=1)
    [again] = await invite(uow, "ADA@example.com")
    assert (
        again.outcome is InviteOutcome.ALREADY_INVITED
        and again.invitation_id == first.invitation_id
    )
    later = await services.invite(
        uow,
        InviteCommand(emails="ada@example.com"),
        policy=POLICY,
        minter=MINTER,
        now=NOW + timedelta(hours=2),
    )
    assert outcomes(later) == ["queued"]


async def test_a_deactivated_account_is_named_as_such() -> None:
    uow = FakeUnitOfWork()
    uow.members.add(Member(uuid.uuid4(), "old@example.com", "Old", "deactivated", NOW))
    [result] = await invite(uow, "old@example.com")
    assert (result.outcome, result.reason) == (
        InviteOutcome.ALREADY_MEMBER,
        "account is deactivated",
    )


async def test_too_many_addresses_refuses_the_whole_request() -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(TooManyAddresses, match=r"6 addresses .* limit is 5"):
        await invite(uow, [f"p{n}@example.com" for n in range(6)])
    assert uow.invitations.rows == {} and uow.published == []


async def test_the_daily_limit_refuses_the_whole_request_with_a_retry_time() -> None:
    uow = FakeUnitOfWork()
    await invite(uow, [f"p{n}@example.com" for n in range(5)])
    await invite(uow, [f"q{n}@example.com" for n in range(4)])
    with pytest.raises(DailyLimitReached) as refused:
        await invite(uow, ["r1@example.com", "r2@example.com"])
    assert refused.value.retry_after_seconds == 12 * 3600
    assert len(uow.invitations.rows) == 9
    assert outcomes(await invite(uow, ["r1@example.com"])) == ["queued"]


@pytest.mark.parametrize("hours", [0, 721])
async def test_an_expiry_outside_the_limits_is_refused(hours: int) -> None:
    with pytest.raises(InvalidExpiry, match="between 1 and 720"):
        await invite(FakeUnitOfWork(), "ada@example.com", expires_in_hours=hours)


async def test_the_inviter_name_and_message_travel_in_the_event() -> None:
    uow = FakeUnitOfWork()
    admin = uuid.uuid4()
    uow.members.add(Member(admin, "boss@example.com", "The Boss", "active", NOW))
    await invite(uow, "ada@example.com", inviter_id=admin, message="See you <there>!")
    [requested] = uow.events("InvitationRequested")
    assert (requested.data.inviter_name, requested.data.message) == ("The Boss", "See you <there>!")


async def test_an_invitation_gives_the_user_role_unless_told_otherwise() -> None:
    uow = FakeUnitOfWork()
    [result] = await invite(uow, "ada@example.com")
    assert result.invitation_id is not None
    assert uow.invitations.rows[result.invitation_id].roles == ["user"]
    [issued] = uow.events("InvitationIssued")
    assert issued.data.roles == ["user"]


async def test_an_admin_invites_with_roles_that_travel_to_whoever_joins() -> None:
    uow = FakeUnitOfWork()
    [result] = await invite(
        uow, "ada@example.com", roles=(" User", "admin", "user"), inviter_is_admin=True
    )
    assert result.invitation_id is not None
    await services.resend(uow, result.invitation_id, policy=POLICY, minter=MINTER, now=NOW)
    # Normalised, each once, in the contract's order; the resend carries them again.
    assert [e.data.roles for e in uow.events("InvitationIssued")] == [["admin", "user"]] * 2


async def test_only_an_admin_may_invite_an_admin_and_nothing_is_created_otherwise() -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(RoleNotAllowed, match="only an admin may invite an admin"):
        await invite(uow, "ada@example.com", roles=("admin",), inviter_is_admin=False)
    assert uow.invitations.rows == {} and uow.events("InvitationIssued") == []
    [result] = await invite(uow, "ada@example.com", roles=("user",), inviter_is_admin=False)
    assert result.outcome is InviteOutcome.QUEUED


@pytest.mark.parametrize(
    ("roles", "problem"), [((), "at least one role"), (("owner",), "unknown role\\(s\\) owner")]
)
async def test_roles_an_invitation_cannot_carry_are_refused(
    roles: tuple[str, ...], problem: str
) -> None:
    uow = FakeUnitOfWork()
    with pytest.raises(InvalidRoles, match=problem):
        await invite(uow, "ada@example.com", roles=roles, inviter_is_admin=True)
    assert uow.invitations.rows == {}


async def test_resend_keeps_the_link_while_unexpired_and_renews_it_after() -> None:
    uow = FakeUnitOfWork()
    [result] = await invite(uow, "ada@example.com", expires_in_hours=1)
    assert result.invitation_id is not None
    await services.resend(uow, result.invitation_id, policy=POLICY, minter=MINTER, now=NOW)
    await services.resend(
        uow, result.invitation_id, policy=POLICY, minter=MINTER, now=NOW + timedelta(hours=3)
    )
    first, same, renewed = (e.data for e in uow.events("InvitationRequested"))
    assert same.join_url == first.join_url and same.expires_at == first.expires_at
    assert renewed.join_url != first.join_url
    # The public fact follows each send, with the hash the join page will check.
    issued = [e.data for e in uow.events("InvitationIssued")]
    assert [i.expires_at for i in issued] == [first.expires_at, same.expires_at, renewed.expires_at]
    assert issued[0].token_hash == issued[1].token_hash != issued[2].token_hash


async def test_the_public_fact_carries_no_link_and_the_link_goes_to_the_mailer_only() -> None:
    uow = FakeUnitOfWork()
    [result] = await invite(uow, "ada@example.com")
    [issued] = uow.events("InvitationIssued")
    [requested] = uow.events("InvitationRequested")
    token = requested.data.join_url.rsplit("/", 1)[1]
    assert token not in issued.to_json().decode()
    assert "join_url" not in issued.data.model_dump()
    assert result.invitation_id is not None
    assert issued.data.token_hash == uow.invitations.rows[result.invitation_id].token_hash
    assert requested.data.spec.mail_only and not issued.data.spec.mail_only


async def test_revoking_emits_the_revocation_once_and_forbids_resending() -> None:
    uow = FakeUnitOfWork()
    [result] = await invite(uow, "ada@example.com")
    assert result.invitation_id is not None
    await services.revoke(uow, result.invitation_id, now=NOW)
    await services.revoke(uow, result.invitation_id, now=NOW)
    [revoked] = uow.events("InvitationRevoked")
    assert revoked.data.token_hash == uow.invitations.rows[result.invitation_id].token_hash
    with pytest.raises(InvitationError):
        await services.resend(uow, result.invitation_id, policy=POLICY, minter=MINTER, now=NOW)


async def test_unknown_invitations_are_not_found() -> None:
    with pytest.raises(services.NotFound):
        await services.revoke(FakeUnitOfWork(), uuid.uuid4(), now=NOW)


async def test_a_new_account_accepts_its_invitation_and_closes_the_others_for_its_address() -> None:
    uow = FakeUnitOfWork()
    [joined] = await invite(uow, "ada@example.com")
    other = Invitation.issue("ADA@example.com", now=NOW, ttl_hours=48, minter=MINTER)
    uow.invitations.add(other)
    user_id = uuid.uuid4()
    created = new_event(
        UserCreated(
            user_id=user_id,
            email="Ada@example.com",
            username="ada",
            name="Ada",
            roles=["user"],
            status="pending",
            created_at=NOW,
            invitation_id=joined.invitation_id,
        ),
        producer="users",
    ).model_copy(update={"occurred_at": NOW})
    await services.record_member(uow, created, policy=POLICY)
    await services.record_member(uow, created, policy=POLICY)  # redelivered: no second effect

    assert joined.invitation_id is not None
    accepted = uow.invitations.rows[joined.invitation_id]
    assert (accepted.status, accepted.accepted_user_id) == (InvitationStatus.ACCEPTED, user_id)
    assert other.status is InvitationStatus.REVOKED
    assert [e.data.invitation_id for e in uow.events("InvitationRevoked")] == [other.id]
    assert outcomes(await invite(uow, "ada@example.com")) == ["already_member"]


BOSS = uuid.uuid4()


def joined_through(
    invitation_id: uuid.UUID | None, name: str = "Ada Lovelace"
) -> Envelope[UserCreated]:
    return new_event(
        UserCreated(
            user_id=uuid.uuid4(),
            email="ada@example.com",
            username="ada",
            name=name,
            roles=["user"],
            status="pending",
            created_at=NOW,
            invitation_id=invitation_id,
        ),
        producer="users",
    ).model_copy(update={"occurred_at": NOW})


async def invited_by_the_boss(uow: FakeUnitOfWork, **fields: object) -> uuid.UUID:
    uow.members.add(Member(BOSS, "boss@acme.test", "The Boss", "active", NOW, "Boss@Acme.test"))
    [result] = await invite(uow, "ada@example.com", inviter_id=BOSS, **fields)
    assert result.invitation_id is not None
    return result.invitation_id


async def test_an_acceptance_is_announced_and_told_to_the_inviter_once() -> None:
    uow = FakeUnitOfWork()
    invitation_id = await invited_by_the_boss(uow)
    joined = joined_through(invitation_id)
    await services.record_member(uow, joined, policy=POLICY)
    await services.record_member(uow, joined, policy=POLICY)
    [accepted] = uow.events("InvitationAccepted")
    assert (accepted.data.invitation_id, accepted.data.user_id, accepted.data.inviter_id) == (
        invitation_id,
        joined.data.user_id,
        BOSS,
    )
    [notice] = uow.events("AcceptanceEmailRequested")
    assert (notice.data.recipient, notice.data.inviter_name) == ("Boss@Acme.test", "The Boss")
    assert (notice.data.member_name, notice.data.member_email) == (
        "Ada Lovelace",
        "ada@example.com",
    )
    assert (notice.data.workspace_name, notice.data.console_url) == (
        "Acme",
        "https://chat.acme.test/",
    )


async def test_the_inviter_can_turn_the_notice_off_per_invitation() -> None:
    uow = FakeUnitOfWork()
    quiet = await invited_by_the_boss(uow, notify_inviter=False)
    await services.record_member(uow, joined_through(quiet), policy=POLICY)
    assert len(uow.events("InvitationAccepted")) == 1  # the public fact all the same
    assert uow.events("AcceptanceEmailRequested") == []


async def test_the_inviter_can_turn_every_notice_off_later_in_their_settings() -> None:
    uow = FakeUnitOfWork()
    invitation_id = await invited_by_the_boss(uow)
    assert (await services.inviter_settings(uow, BOSS)).notify_on_acceptance  # the default
    await services.change_inviter_settings(uow, BOSS, notify_on_acceptance=False)
    assert not (await services.inviter_settings(uow, BOSS)).notify_on_acceptance
    await services.record_member(uow, joined_through(invitation_id), policy=POLICY)
    assert uow.events("AcceptanceEmailRequested") == []


async def test_only_the_inviter_changes_whether_they_are_told() -> None:
    uow = FakeUnitOfWork()
    invitation_id = await invited_by_the_boss(uow)
    with pytest.raises(services.NotYourInvitation):
        await services.change_acceptance_notice(
            uow, invitation_id, notify_inviter=False, actor_id=uuid.uuid4()
        )
    changed = await services.change_acceptance_notice(
        uow, invitation_id, notify_inviter=False, actor_id=BOSS
    )
    assert changed.notify_inviter is False
    await services.record_member(uow, joined_through(invitation_id), policy=POLICY)
    assert uow.events("AcceptanceEmailRequested") == []


async def test_no_notice_without_an_inviter() -> None:
    uow = FakeUnitOfWork()
    [anonymous] = await invite(uow, "ada@example.com")  # a system invited, not a person
    assert anonymous.invitation_id is not None
    await services.record_member(uow, joined_through(anonymous.invitation_id), policy=POLICY)
    assert len(uow.events("InvitationAccepted")) == 1
    assert uow.events("AcceptanceEmailRequested") == []


async def test_no_notice_to_a_deactivated_inviter() -> None:
    uow = FakeUnitOfWork()
    invitation_id = await invited_by_the_boss(uow)
    uow.members.rows[BOSS].status = "deactivated"
    await services.record_member(uow, joined_through(invitation_id), policy=POLICY)
    assert len(uow.events("InvitationAccepted")) == 1
    assert uow.events("AcceptanceEmailRequested") == []


async def sent_invitation(uow: FakeUnitOfWork, hours: int = 168) -> Invitation:
    [result] = await invite(uow, "ada@example.com", expires_in_hours=hours)
    assert result.invitation_id is not None
    invitation = uow.invitations.rows[result.invitation_id]
    invitation.record_sent(at=NOW, attempts=1)
    return invitation


async def remind(uow: FakeUnitOfWork, at: datetime) -> int:
    return await services.send_due_reminders(uow, policy=POLICY, minter=MINTER, now=at)


async def test_one_reminder_two_days_before_expiry_with_the_same_link() -> None:
    uow = FakeUnitOfWork()
    invitation = await sent_invitation(uow)
    due = invitation.expires_at - timedelta(days=2)
    assert invitation.remind_at == due
    assert await remind(uow, due - timedelta(seconds=1)) == 0
    assert await remind(uow, due) == 1
    assert await remind(uow, due + timedelta(hours=1)) == 0  # once only
    first, reminder = (e.data for e in uow.events("InvitationRequested"))
    assert (first.reminder, reminder.reminder) == (False, True)
    assert reminder.join_url == first.join_url and reminder.expires_at == first.expires_at
    assert invitation.reminded_at == invitation.expires_at - timedelta(days=2)


async def test_no_reminder_for_an_invitation_valid_less_than_four_days() -> None:
    uow = FakeUnitOfWork()
    invitation = await sent_invitation(uow, hours=95)
    assert invitation.remind_at is None
    assert await remind(uow, invitation.expires_at - timedelta(minutes=1)) == 0


@pytest.mark.parametrize("cancel", ["resend", "revoke", "accept"])
async def test_a_resend_a_revocation_or_an_acceptance_cancels_the_reminder(cancel: str) -> None:
    uow = FakeUnitOfWork()
    invitation = await sent_invitation(uow)
    due = invitation.remind_at
    assert due is not None
    if cancel == "resend":
        await services.resend(uow, invitation.id, policy=POLICY, minter=MINTER, now=NOW)
        invitation.record_sent(at=NOW, attempts=1)
    elif cancel == "revoke":
        await services.revoke(uow, invitation.id, now=NOW)
    else:
        await services.record_member(uow, joined_through(invitation.id), policy=POLICY)
    assert await remind(uow, due) == 0
    assert not [e for e in uow.events("InvitationRequested") if e.data.reminder]


async def test_no_reminder_goes_to_an_expired_or_undelivered_invitation() -> None:
    expired = await sent_invitation(uow := FakeUnitOfWork())
    assert await remind(uow, expired.expires_at) == 0
    [undelivered] = await invite(uow := FakeUnitOfWork(), "grace@example.com")
    assert undelivered.invitation_id is not None
    waiting = uow.invitations.rows[undelivered.invitation_id]
    assert waiting.remind_at is not None
    assert await remind(uow, waiting.remind_at) == 0  # its first email never went out


async def test_reminders_can_be_turned_off() -> None:
    uow = FakeUnitOfWork()
    command = InviteCommand(emails="ada@example.com")
    policy = replace(POLICY, reminders=ReminderRule(before=None))
    [result] = await services.invite(uow, command, policy=policy, minter=MINTER, now=NOW)
    assert result.invitation_id is not None
    assert uow.invitations.rows[result.invitation_id].remind_at is None


def deferred(
    invitation_id: uuid.UUID,
    reason: str,
    *,
    at: datetime = NOW,
    kind: EmailKind = EmailKind.INVITATION,
) -> Envelope[EmailDeferred]:
    return new_event(
        EmailDeferred(
            email_id=uuid.uuid4(),
            kind=kind,
            reference_id=invitation_id,
            recipient="ada@example.com",
            attempts=2,
            reason=reason,
            next_attempt_at=at + timedelta(minutes=10),
            deliver_by=at + timedelta(days=7),
            deferred_at=at,
        ),
        producer="mailer",
    )


async def invited(uow: FakeUnitOfWork, email: str = "ada@example.com") -> Invitation:
    [result] = await invite(uow, email)
    assert result.invitation_id is not None
    return uow.invitations.rows[result.invitation_id]


async def test_a_deferral_shows_the_invitation_retrying_with_its_reason_and_next_attempt() -> None:
    uow = FakeUnitOfWork()
    invitation = await invited(uow)
    await services.record_email_outcome(uow, deferred(invitation.id, "421 4.7.0 busy"))
    assert (invitation.status, invitation.last_error, invitation.attempts) == (
        InvitationStatus.RETRYING,
        "421 4.7.0 busy",
        2,
    )
    assert invitation.next_attempt_at == NOW + timedelta(minutes=10)
    listed = await services.list_invitations(
        uow, InvitationQuery(status=InvitationStatus.RETRYING), now=NOW
    )
    assert [i.id for i in listed.items] == [invitation.id]
    counts = await services.count_by_status(uow, now=NOW)
    assert (counts[InvitationStatus.RETRYING], counts[InvitationStatus.PENDING]) == (1, 0)
    # Still open: the address counts as invited, and it expires like a pending one.
    assert outcomes(await invite(uow, "ada@example.com")) == ["already_invited"]
    after_expiry = NOW + timedelta(hours=POLICY.default_ttl_hours)
    assert (await services.count_by_status(uow, now=after_expiry))[InvitationStatus.EXPIRED] == 1


async def test_a_redelivered_deferral_has_no_second_effect() -> None:
    uow = FakeUnitOfWork()
    invitation = await invited(uow)
    event = deferred(invitation.id, "451 busy")
    await services.record_email_outcome(uow, event)
    await services.resend(uow, invitation.id, policy=POLICY, minter=MINTER, now=NOW)
    await services.record_email_outcome(uow, event)  # the broker delivers it again
    assert (invitation.status, invitation.last_error) == (InvitationStatus.PENDING, None)


async def test_deferrals_of_other_emails_and_unknown_invitations_change_nothing() -> None:
    uow = FakeUnitOfWork()
    invitation = await invited(uow)
    await services.record_email_outcome(
        uow, deferred(invitation.id, "451 busy", kind=EmailKind.WELCOME)
    )
    await services.record_email_outcome(uow, deferred(uuid.uuid4(), "451 busy"))
    assert (invitation.status, invitation.next_attempt_at) == (InvitationStatus.PENDING, None)


async def test_retrying_then_sent_or_failed_follows_the_outcome() -> None:
    uow = FakeUnitOfWork()
    sent, failed = await invited(uow, "ada@example.com"), await invited(uow, "bob@example.com")
    for invitation in (sent, failed):
        await services.record_email_outcome(uow, deferred(invitation.id, "451 busy"))
    await services.record_email_outcome(
        uow,
        new_event(
            EmailSent(
                email_id=uuid.uuid4(),
                kind=EmailKind.INVITATION,
                reference_id=sent.id,
                recipient=sent.email,
                attempts=3,
                sent_at=NOW + timedelta(minutes=10),
            ),
            producer="mailer",
        ),
    )
    await services.record_email_outcome(
        uow,
        new_event(
            EmailFailed(
                email_id=uuid.uuid4(),
                kind=EmailKind.INVITATION,
                reference_id=failed.id,
                recipient=failed.email,
                attempts=9,
                reason="not delivered before its deadline: 451 busy",
                permanent=False,
                failed_at=NOW + timedelta(days=1),
            ),
            producer="mailer",
        ),
    )
    assert (sent.status, sent.last_error, sent.next_attempt_at) == (
        InvitationStatus.SENT,
        None,
        None,
    )
    assert (failed.status, failed.next_attempt_at) == (InvitationStatus.FAILED, None)
    assert failed.last_error == "not delivered before its deadline: 451 busy"
    # A deferral that arrives after the outcome is stale.
    await services.record_email_outcome(uow, deferred(sent.id, "451 late", at=NOW))
    assert sent.status is InvitationStatus.SENT


@pytest.mark.parametrize(
    ("snapshot", "configured", "warning_part"),
    [
        (HeartbeatSnapshot(heard=False, reachable=False), None, "cannot be reached"),
        (
            HeartbeatSnapshot(heard=True, reachable=False, smtp_configured=True),
            True,
            "cannot be reached",
        ),
        (
            HeartbeatSnapshot(heard=True, reachable=True, smtp_configured=False),
            False,
            "SMTP is not configured",
        ),
        (
            HeartbeatSnapshot(
                heard=True, reachable=True, smtp_configured=True, last_attempt_ok=False
            ),
            True,
            "did not answer",
        ),
        (
            HeartbeatSnapshot(
                heard=True, reachable=True, smtp_configured=True, last_attempt_ok=True
            ),
            True,
            None,
        ),
    ],
)
def test_the_smtp_warning_follows_the_mailer_heartbeat(
    snapshot: HeartbeatSnapshot, configured: bool | None, warning_part: str | None
) -> None:
    report = services.smtp_report(snapshot)
    assert report.smtp_configured is configured
    if warning_part is None:
        assert report.warning is None
    else:
        assert report.warning is not None and warning_part in report.warning
        assert "kept" in report.warning


def test_the_smtp_warning_reads_the_heartbeat_through_the_port() -> None:
    heartbeats = mailer_heartbeats("onboarding.events", service="invitations")
    source = HeartbeatMailerStatus(heartbeats)
    assert services.smtp_report(source.snapshot()).smtp_configured is None
    heartbeats.remember(
        MailerStatus(smtp_configured=False, interval_seconds=10, reported_at=datetime.now(UTC))
    )
    report = services.smtp_report(source.snapshot())
    assert report.smtp_configured is False
    assert report.warning is not None and "SMTP is not configured" in report.warning


def test_a_heartbeat_three_intervals_old_means_the_mailer_cannot_be_reached() -> None:
    heartbeats = mailer_heartbeats("onboarding.events", service="invitations")
    reported_at = datetime(2026, 1, 1, tzinfo=UTC)
    heartbeats.remember(
        MailerStatus(smtp_configured=True, interval_seconds=10, reported_at=reported_at)
    )
    # An older heartbeat arriving late does not replace the newer one.
    heartbeats.remember(
        MailerStatus(
            smtp_configured=False, interval_seconds=10, reported_at=reported_at - timedelta(1)
        )
    )
    source = HeartbeatMailerStatus(heartbeats)
    assert source.snapshot(now=reported_at + timedelta(seconds=30)).reachable
    stale = source.snapshot(now=reported_at + timedelta(seconds=31))
    assert not stale.reachable and stale.smtp_configured is True
    assert "cannot be reached" in (services.smtp_report(stale).warning or "")
