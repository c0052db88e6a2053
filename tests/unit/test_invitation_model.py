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
