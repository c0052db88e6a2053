"""Invitation lifecycle rules: tokens, expiry, resend, revoke, acceptance."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from invitations.domain.model import (
    DailyQuota,
    Invitation,
    InvitationError,
    InvitationStatus,
    Member,
    TokenMinter,
    hash_token,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
MINTER = TokenMinter(b"k" * 32)


def issue(ttl_hours: int = 24) -> Invitation:
    return Invitation.issue("Ada@Example.com", now=NOW, ttl_hours=ttl_hours, minter=MINTER)


def test_a_new_invitation_stores_a_salt_and_the_hash_of_its_token_never_the_token() -> None:
    invitation = issue()
    token = MINTER.token(invitation.token_salt)
    assert len(token) >= 43  # 256 bits, base64url
    assert invitation.token_hash == hash_token(token)
    assert token not in (invitation.token_salt, invitation.token_hash)
    assert invitation.status is InvitationStatus.PENDING
    assert invitation.email_key == "ada@example.com"
    assert invitation.expires_at == NOW + timedelta(hours=24)


def test_tokens_differ_every_time_and_depend_on_the_secret() -> None:
    salts = {issue().token_salt for _ in range(50)}
    assert len({MINTER.token(salt) for salt in salts}) == 50
    salt = next(iter(salts))
    assert TokenMinter(b"x" * 32).token(salt) != MINTER.token(salt)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TokenMinter(b"short")


def test_an_invitation_expires_unless_it_was_accepted_or_revoked() -> None:
    invitation = issue(ttl_hours=1)
    later = NOW + timedelta(hours=2)
    assert invitation.status_at(later) is InvitationStatus.EXPIRED
    assert not invitation.is_open_at(later)
    invitation.accept(user_id=uuid.uuid4(), at=NOW)
    assert invitation.status_at(later) is InvitationStatus.ACCEPTED


def test_resending_an_unexpired_invitation_keeps_its_link_and_expiry() -> None:
    invitation = issue()
    invitation.record_sent(at=NOW, attempts=1)
    before = (invitation.token_hash, invitation.expires_at)
    invitation.resend(now=NOW + timedelta(hours=1), minter=MINTER)
    assert (invitation.token_hash, invitation.expires_at) == before
    assert invitation.status is InvitationStatus.PENDING
    assert invitation.sends == 2


def test_resending_an_expired_invitation_gives_a_new_link_and_expiry() -> None:
    invitation = issue(ttl_hours=1)
    old_hash = invitation.token_hash
    later = NOW + timedelta(hours=5)
    invitation.resend(now=later, minter=MINTER)
    assert invitation.token_hash != old_hash
    assert invitation.expires_at == later + timedelta(hours=1)
    assert invitation.is_open_at(later)


@pytest.mark.parametrize("final", ["accept", "revoke"])
def test_accepted_and_revoked_invitations_cannot_be_resent(final: str) -> None:
    invitation = issue()
    if final == "accept":
        invitation.accept(user_id=uuid.uuid4(), at=NOW)
    else:
        invitation.revoke(now=NOW)
    with pytest.raises(InvitationError, match="cannot be resent"):
        invitation.resend(now=NOW, minter=MINTER)


def test_revoking_twice_is_harmless_and_an_accepted_one_stays_accepted() -> None:
    invitation = issue()
    assert invitation.revoke(now=NOW) is True
    assert invitation.revoke(now=NOW) is False
    accepted = issue()
    accepted.accept(user_id=uuid.uuid4(), at=NOW)
    with pytest.raises(InvitationError, match="accepted"):
        accepted.revoke(now=NOW)


def test_a_stale_failure_does_not_overwrite_a_success() -> None:
    invitation = issue()
    invitation.record_sent(at=NOW, attempts=1)
    invitation.record_failed(reason="late failure", attempts=1)
    assert invitation.status is InvitationStatus.SENT


def test_a_failure_is_recorded_with_its_reason() -> None:
    invitation = issue()
    invitation.record_failed(reason="550 no such user", attempts=3)
    assert (invitation.status, invitation.last_error, invitation.attempts) == (
        InvitationStatus.FAILED,
        "550 no such user",
        3,
    )


def test_an_older_member_snapshot_does_not_overwrite_a_newer_one() -> None:
    member = Member(
        user_id=uuid.uuid4(),
        email_key="new@example.com",
        name="New",
        status="active",
        updated_at=NOW,
    )
    member.apply(
        email="old@example.com", name="Old", status="pending", at=NOW - timedelta(seconds=1)
    )
    assert (member.email_key, member.name) == ("new@example.com", "New")
    member.apply(
        email="Newer@Example.com", name="Newer", status="active", at=NOW + timedelta(seconds=1)
    )
    assert member.email_key == "newer@example.com"


def test_the_daily_quota_refuses_what_would_pass_the_limit() -> None:
    quota = DailyQuota(day="2026-01-01", used=8)
    assert quota.take(2, limit=10) is True
    assert quota.take(1, limit=10) is False
    assert quota.used == 10


def defer(invitation: Invitation, reason: str, *, at: datetime, attempts: int = 1) -> None:
    invitation.record_deferred(
        reason=reason, attempts=attempts, next_attempt_at=at + timedelta(minutes=5), at=at
    )


def test_a_deferral_marks_it_retrying_with_the_reason_and_the_next_attempt() -> None:
    invitation = issue()
    defer(invitation, "421 4.7.0 try again later", at=NOW, attempts=2)
    assert (invitation.status, invitation.last_error, invitation.attempts) == (
        InvitationStatus.RETRYING,
        "421 4.7.0 try again later",
        2,
    )
    assert invitation.next_attempt_at == NOW + timedelta(minutes=5)
    later = NOW + timedelta(minutes=1)
    defer(invitation, "connection refused", at=later, attempts=3)
    assert (invitation.last_error, invitation.next_attempt_at) == (
        "connection refused",
        later + timedelta(minutes=5),
    )


def test_an_older_deferral_arriving_late_does_not_overwrite_a_newer_one() -> None:
    invitation = issue()
    defer(invitation, "newer", at=NOW + timedelta(minutes=2), attempts=3)
    defer(invitation, "older", at=NOW + timedelta(minutes=1), attempts=2)
    assert (invitation.last_error, invitation.attempts) == ("newer", 3)
    assert invitation.next_attempt_at == NOW + timedelta(minutes=7)


@pytest.mark.parametrize("outcome", ["sent", "failed", "accepted", "revoked"])
def test_a_deferral_never_undoes_a_send_a_failure_or_a_final_state(outcome: str) -> None:
    invitation = issue()
    if outcome == "sent":
        invitation.record_sent(at=NOW, attempts=1)
    elif outcome == "failed":
        invitation.record_failed(reason="550 no such user", attempts=1)
    elif outcome == "accepted":
        invitation.accept(user_id=uuid.uuid4(), at=NOW)
    else:
        invitation.revoke(now=NOW)
    before = (invitation.status, invitation.last_error)
    defer(invitation, "late deferral", at=NOW + timedelta(minutes=1))
    assert (invitation.status, invitation.last_error) == before
    assert invitation.next_attempt_at is None


def test_sent_or_failed_after_retrying_clears_the_next_attempt() -> None:
    sent = issue()
    defer(sent, "451 busy", at=NOW)
    sent.record_sent(at=NOW + timedelta(minutes=5), attempts=2)
    assert (sent.status, sent.last_error, sent.next_attempt_at, sent.attempts) == (
        InvitationStatus.SENT,
        None,
        None,
        2,
    )
    failed = issue()
    defer(failed, "451 busy", at=NOW)
    failed.record_failed(reason="not delivered before its deadline", attempts=9)
    assert (failed.status, failed.last_error, failed.next_attempt_at) == (
        InvitationStatus.FAILED,
        "not delivered before its deadline",
        None,
    )


def test_a_retrying_invitation_is_open_expires_and_may_be_resent_or_revoked() -> None:
    invitation = issue(ttl_hours=1)
    defer(invitation, "451 busy", at=NOW)
    assert invitation.is_open_at(NOW)
    assert invitation.status_at(NOW + timedelta(hours=2)) is InvitationStatus.EXPIRED
    invitation.resend(now=NOW, minter=MINTER)
    assert (invitation.status, invitation.last_error, invitation.next_attempt_at) == (
        InvitationStatus.PENDING,
        None,
        None,
    )
    defer(invitation, "451 busy", at=NOW + timedelta(minutes=1))
    assert invitation.revoke(now=NOW) is True
    assert (invitation.status, invitation.next_attempt_at) == (InvitationStatus.REVOKED, None)
