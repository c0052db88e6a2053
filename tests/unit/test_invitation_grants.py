"""The users service's copy of an invitation: open, used, revoked or expired; a resend after
expiry replaces the token; a revocation that overtakes its request still wins."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from users.domain.invitations import GrantState, InvitationGrant, LinkProblem

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=7)


def grant(expires_at: datetime = LATER) -> InvitationGrant:
    return InvitationGrant.requested(
        uuid.uuid4(), email="ada@example.com", token_hash="a" * 64, expires_at=expires_at
    )


def test_an_open_unexpired_grant_can_be_used_once() -> None:
    open_grant = grant()
    assert open_grant.problem(NOW) is None
    open_grant.use(NOW)
    assert open_grant.state is GrantState.USED
    assert open_grant.problem(NOW) is LinkProblem.USED
    with pytest.raises(ValueError, match="used"):
        open_grant.use(NOW)


def test_a_grant_expires_at_its_expiry() -> None:
    expiring = grant(expires_at=NOW + timedelta(seconds=1))
    assert expiring.problem(NOW) is None
    assert expiring.problem(NOW + timedelta(seconds=1)) is LinkProblem.EXPIRED
    with pytest.raises(ValueError, match="expired"):
        expiring.use(NOW + timedelta(hours=1))


def test_a_revoked_grant_stays_revoked_and_a_used_one_stays_used() -> None:
    revoked = grant()
    assert revoked.revoke()
    assert revoked.problem(NOW) is LinkProblem.REVOKED
    assert not revoked.revoke()
    assert not revoked.request_again(email="ada@example.com", token_hash="b" * 64, expires_at=LATER)
    assert (revoked.state, revoked.token_hash) == (GrantState.REVOKED, "a" * 64)

    used = grant()
    used.use(NOW)
    assert not used.revoke()
    assert not used.request_again(email="ada@example.com", token_hash="b" * 64, expires_at=LATER)
    assert used.problem(NOW) is LinkProblem.USED


def test_a_resend_after_expiry_replaces_token_and_expiry() -> None:
    expired = grant(expires_at=NOW - timedelta(hours=1))
    assert expired.problem(NOW) is LinkProblem.EXPIRED
    assert expired.request_again(email="ada@example.com", token_hash="b" * 64, expires_at=LATER)
    assert (expired.token_hash, expired.expires_at) == ("b" * 64, LATER)
    assert expired.problem(NOW) is None


def test_the_same_request_again_changes_nothing_and_an_older_one_is_ignored() -> None:
    current = grant()
    assert not current.request_again(email="ada@example.com", token_hash="a" * 64, expires_at=LATER)
    older = LATER - timedelta(days=7)
    assert not current.request_again(email="ada@example.com", token_hash="c" * 64, expires_at=older)
    assert (current.token_hash, current.expires_at) == ("a" * 64, LATER)


def test_a_revocation_before_its_request_wins() -> None:
    early = InvitationGrant.revoked_early(uuid.uuid4(), token_hash="a" * 64)
    assert early.problem(NOW) is LinkProblem.REVOKED
    assert early.request_again(email="ada@example.com", token_hash="a" * 64, expires_at=LATER)
    assert early.email == "ada@example.com"
    assert early.state is GrantState.REVOKED
    assert early.problem(NOW) is LinkProblem.REVOKED
