"""The users service's copy of an invitation: open, used, revoked or expired; a resend after
expiry replaces the token; a revocation that overtakes its request still wins; the roles it
gives, and a role this service does not know makes the link unusable."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from users.domain.invitations import GrantState, InvitationGrant, LinkProblem

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=7)
USER: tuple[str, ...] = ("user",)


def grant(expires_at: datetime = LATER, roles: tuple[str, ...] = USER) -> InvitationGrant:
    return InvitationGrant.requested(
        uuid.uuid4(),
        email="ada@example.com",
        token_hash="a" * 64,
        expires_at=expires_at,
        roles=roles,
    )


def again(
    held: InvitationGrant,
    token_hash: str = "b" * 64,
    expires_at: datetime = LATER,
    roles: tuple[str, ...] = USER,
) -> bool:
    return held.request_again(
        email="ada@example.com", token_hash=token_hash, expires_at=expires_at, roles=roles
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
    assert not again(revoked)
    assert (revoked.state, revoked.token_hash) == (GrantState.REVOKED, "a" * 64)

    used = grant()
    used.use(NOW)
    assert not used.revoke()
    assert not again(used, roles=("admin", "user"))
    assert used.problem(NOW) is LinkProblem.USED
    assert used.roles == USER


def test_a_resend_after_expiry_replaces_token_and_expiry() -> None:
    expired = grant(expires_at=NOW - timedelta(hours=1))
    assert expired.problem(NOW) is LinkProblem.EXPIRED
    assert again(expired)
    assert (expired.token_hash, expired.expires_at) == ("b" * 64, LATER)
    assert expired.problem(NOW) is None


def test_the_same_request_again_changes_nothing_and_an_older_one_is_ignored() -> None:
    current = grant()
    assert not again(current, "a" * 64)
    older = LATER - timedelta(days=7)
    assert not again(current, "c" * 64, older, roles=("admin", "user"))
    assert (current.token_hash, current.expires_at, current.roles) == ("a" * 64, LATER, USER)


def test_a_revocation_before_its_request_wins() -> None:
    early = InvitationGrant.revoked_early(uuid.uuid4(), token_hash="a" * 64)
    assert early.problem(NOW) is LinkProblem.REVOKED
    assert early.roles == USER  # nothing known yet: the least a link ever gave
    assert again(early, "a" * 64, roles=("admin", "user"))
    assert (early.email, early.roles) == ("ada@example.com", ("admin", "user"))
    assert early.state is GrantState.REVOKED
    assert early.problem(NOW) is LinkProblem.REVOKED


def test_a_grant_keeps_the_roles_of_its_invitation() -> None:
    admin = grant(roles=("admin", "user"))
    assert admin.roles == ("admin", "user")
    assert admin.problem(NOW) is None


def test_a_resend_brings_its_roles_and_a_change_of_roles_alone_counts() -> None:
    resent = grant(expires_at=NOW - timedelta(hours=1))
    assert again(resent, roles=("admin", "user"))
    assert resent.roles == ("admin", "user")
    same_link = grant()
    assert again(same_link, "a" * 64, roles=("admin",))
    assert same_link.roles == ("admin",)


@pytest.mark.parametrize("roles", [("owner", "user"), ()])
def test_a_role_this_service_does_not_know_makes_the_link_unusable(
    roles: tuple[str, ...],
) -> None:
    unknown = grant(roles=roles)
    assert unknown.problem(NOW) is LinkProblem.UNKNOWN_ROLE
    with pytest.raises(ValueError, match="unknown_role"):
        unknown.use(NOW)
    assert unknown.state is GrantState.OPEN
    # Only a link that could be used otherwise is refused for its roles.
    assert unknown.problem(LATER) is LinkProblem.EXPIRED
