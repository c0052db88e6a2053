from __future__ import annotations

from datetime import UTC, datetime, timedelta

from invitations.domain.model import Invitation, InvitationStatus, hash_token

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_new_invitation_stores_only_the_hash_of_a_long_random_token() -> None:
    invitation, token = Invitation.issue("a@example.com", now=NOW, ttl=timedelta(days=7))
    assert len(token) >= 43  # 256 bits, base64url
    assert invitation.token_hash == hash_token(token) != token
    assert invitation.status is InvitationStatus.PENDING
    assert invitation.expires_at == NOW + timedelta(days=7)


def test_tokens_differ_every_time() -> None:
    tokens = {
        Invitation.issue("a@example.com", now=NOW, ttl=timedelta(days=1))[1] for _ in range(50)
    }
    assert len(tokens) == 50


def test_an_invitation_expires_unless_it_was_accepted_or_revoked() -> None:
    invitation, _ = Invitation.issue("a@example.com", now=NOW, ttl=timedelta(hours=1))
    later = NOW + timedelta(hours=2)
    assert invitation.status_at(later) is InvitationStatus.EXPIRED
    invitation.status = InvitationStatus.ACCEPTED
    assert invitation.status_at(later) is InvitationStatus.ACCEPTED


def test_a_stale_failure_does_not_overwrite_a_success() -> None:
    invitation, _ = Invitation.issue("a@example.com", now=NOW, ttl=timedelta(days=1))
    invitation.record_sent(at=NOW, attempts=1)
    invitation.record_failed(reason="late failure", attempts=1)
    assert invitation.status is InvitationStatus.SENT
    assert invitation.last_error is None


def test_a_failure_is_recorded_with_its_reason() -> None:
    invitation, _ = Invitation.issue("a@example.com", now=NOW, ttl=timedelta(days=1))
    invitation.record_failed(reason="550 no such user", attempts=3)
    assert (invitation.status, invitation.last_error, invitation.attempts) == (
        InvitationStatus.FAILED,
        "550 no such user",
        3,
    )
