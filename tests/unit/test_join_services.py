"""Joining through an invitation against in-memory fakes: the grants learnt from events, the
account made once per link with the invitation's roles, UserCreated with the invitation id, and
guessing slowed down."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from onboarding_shared.contract import InvitationIssued, InvitationRevoked, Role, new_event
from tests.support.fake_users import FakeHasher, FakeUsersUnitOfWork
from users.domain.invitations import GrantState, LinkProblem
from users.domain.model import User, UserStatus
from users.domain.passwords import PasswordPolicy, hash_link_token
from users.domain.rules import InvalidFields
from users.domain.throttling import ThrottlePolicy
from users.service_layer import joining
from users.service_layer.accounts import AccountPolicy
from users.service_layer.errors import JoinRefused, JoinThrottled
from users.service_layer.joining import JoinForm
from users.service_layer.unit_of_work import DuplicateField

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = AccountPolicy(
    passwords=PasswordPolicy(min_length=10),
    workspace_name="Acme Chat",
    public_url="https://chat.acme.test",
    password_link_ttl=timedelta(hours=72),
)
THROTTLING = ThrottlePolicy(max_join_failures_per_address=3)
TOKEN = "invitation-token-" + "x" * 30
FORM = JoinForm(name="Ada Lovelace", username="ada", password="Analytical-engine-1")


def requested(
    invitation_id: uuid.UUID,
    token: str = TOKEN,
    expires_at: datetime = NOW + timedelta(days=7),
    *,
    roles: Sequence[Role] = ("user",),
) -> InvitationIssued:
    return InvitationIssued(
        invitation_id=invitation_id,
        email="Ada@Example.com",
        expires_at=expires_at,
        token_hash=hash_link_token(token),
        roles=list(roles),
    )


async def invite(uow: FakeUsersUnitOfWork, data: InvitationIssued) -> None:
    await joining.record_invitation(uow, new_event(data, producer="invitations"))


async def revoke(uow: FakeUsersUnitOfWork, invitation_id: uuid.UUID, token: str = TOKEN) -> None:
    event = InvitationRevoked(
        invitation_id=invitation_id, token_hash=hash_link_token(token), revoked_at=NOW
    )
    await joining.record_revocation(uow, new_event(event, producer="invitations"))


async def join(
    uow: FakeUsersUnitOfWork,
    token: str = TOKEN,
    form: JoinForm = FORM,
    *,
    now: datetime = NOW,
    address: str = "10.0.0.1",
    hasher: FakeHasher | None = None,
) -> User:
    return await joining.join(
        uow,
        token,
        form,
        address=address,
        policy=POLICY,
        hasher=hasher or FakeHasher(),
        throttling=THROTTLING,
        now=now,
    )


async def refused(
    uow: FakeUsersUnitOfWork, token: str = TOKEN, form: JoinForm = FORM, *, now: datetime = NOW
) -> LinkProblem:
    with pytest.raises(JoinRefused) as raised:
        await join(uow, token, form, now=now)
    return raised.value.problem


async def test_joining_makes_a_pending_verified_account_and_uses_the_grant() -> None:
    uow, invitation_id = FakeUsersUnitOfWork(), uuid.uuid4()
    await invite(uow, requested(invitation_id))
    user = await join(uow)
    assert (user.status, user.verified, user.roles) == (UserStatus.PENDING, True, ["user"])
    assert (user.email, user.username, user.name) == ("Ada@example.com", "ada", "Ada Lovelace")
    assert user.password_hash == "hashed:Analytical-engine-1"
    assert uow.fake_grants.rows[invitation_id].state is GrantState.USED
    [created] = uow.events("UserCreated")
    assert (created.data.user_id, created.data.invitation_id) == (user.id, invitation_id)
    wire = " ".join(event.to_json().decode() for event in uow.published)
    assert TOKEN not in wire and "Analytical-engine-1" not in wire


async def test_a_link_works_once() -> None:
    uow = FakeUsersUnitOfWork()
    await invite(uow, requested(uuid.uuid4()))
    await join(uow)
    assert await refused(uow, form=JoinForm("Other", "other", "Analytical-engine-2")) is (
        LinkProblem.USED
    )
    assert len(uow.fake_users.rows) == 1


async def test_expired_revoked_and_unknown_links_are_refused() -> None:
    uow = FakeUsersUnitOfWork()
    await invite(uow, requested(uuid.uuid4(), "expiring", NOW + timedelta(minutes=1)))
    assert await refused(uow, "expiring", now=NOW + timedelta(minutes=1)) is LinkProblem.EXPIRED
    revoked = uuid.uuid4()
    await invite(uow, requested(revoked, "revoked"))
    await revoke(uow, revoked, "revoked")
    assert await refused(uow, "revoked") is LinkProblem.REVOKED
    assert await refused(uow, "never-issued") is LinkProblem.UNKNOWN
    assert not uow.fake_users.rows and not uow.events("UserCreated")


async def test_a_revocation_that_overtakes_its_request_still_wins() -> None:
    uow, invitation_id = FakeUsersUnitOfWork(), uuid.uuid4()
    await revoke(uow, invitation_id)
    await invite(uow, requested(invitation_id))
    assert await refused(uow) is LinkProblem.REVOKED


async def test_a_resend_after_expiry_kills_the_old_link_and_the_new_one_works() -> None:
    uow, invitation_id = FakeUsersUnitOfWork(), uuid.uuid4()
    await invite(uow, requested(invitation_id, "old-link", NOW - timedelta(hours=1)))
    await invite(uow, requested(invitation_id, "new-link"))
    assert await refused(uow, "old-link") is LinkProblem.UNKNOWN
    user = await join(uow, "new-link")
    assert uow.events("UserCreated")[0].data.invitation_id == invitation_id
    assert user.username == "ada"


async def test_each_event_is_applied_once() -> None:
    uow, invitation_id = FakeUsersUnitOfWork(), uuid.uuid4()
    event = new_event(requested(invitation_id), producer="invitations")
    await joining.record_invitation(uow, event)
    await join(uow)
    await joining.record_invitation(uow, event)  # redelivered
    assert uow.fake_grants.rows[invitation_id].state is GrantState.USED


async def test_the_account_rules_apply_and_a_refusal_leaves_the_link_usable() -> None:
    uow = FakeUsersUnitOfWork()
    await invite(uow, requested(uuid.uuid4(), "first"))
    await join(uow, "first")
    await invite(uow, requested(uuid.uuid4(), "second"))
    with pytest.raises(DuplicateField) as duplicate:
        await join(uow, "second", JoinForm("Grace", "ADA", "Cobol-compiler-59"))
    assert duplicate.value.fields == ("email", "username")
    with pytest.raises(InvalidFields) as invalid:
        await join(uow, "second", JoinForm(" ", "grace hopper", "short"))
    assert set(invalid.value.problems) == {"name", "username", "password"}
    assert len(uow.fake_users.rows) == 1 and len(uow.events("UserCreated")) == 1


async def test_guessing_links_is_throttled_per_client_address() -> None:
    uow = FakeUsersUnitOfWork()
    await invite(uow, requested(uuid.uuid4()))
    for guess in range(THROTTLING.max_join_failures_per_address):
        assert await refused(uow, f"guess-{guess}") is LinkProblem.UNKNOWN
    with pytest.raises(JoinThrottled) as throttled:
        await join(uow)  # even the right link, from this address, for now
    assert throttled.value.retry_after == THROTTLING.lockout.total_seconds()
    assert await join(uow, address="10.0.0.2")  # another client is not slowed down
    assert await uow.throttles.get("join-address:10.0.0.1") is not None
    assert await uow.throttles.get("address:10.0.0.1") is None  # logins are counted apart


async def test_the_account_gets_the_roles_of_the_invitation_whoever_joins() -> None:
    uow, invitation_id = FakeUsersUnitOfWork(), uuid.uuid4()
    await invite(uow, requested(invitation_id, roles=["admin", "user"]))
    assert uow.fake_grants.rows[invitation_id].roles == ("admin", "user")
    user = await join(uow, form=JoinForm("Someone Else", "someone", "Analytical-engine-1"))
    assert (user.roles, user.is_admin) == (["admin", "user"], True)
    [created] = uow.events("UserCreated")
    assert created.data.roles == ["admin", "user"]


async def test_an_invitation_without_roles_makes_a_user() -> None:
    uow, invitation_id = FakeUsersUnitOfWork(), uuid.uuid4()
    wire = requested(invitation_id).model_dump(mode="json", exclude={"roles"})  # before 2.2.0
    await invite(uow, InvitationIssued.model_validate(wire))
    assert uow.fake_grants.rows[invitation_id].roles == ("user",)
    assert (await join(uow)).roles == ["user"]


async def test_a_resend_renews_the_roles_and_an_early_revocation_still_wins() -> None:
    uow, resent, revoked = FakeUsersUnitOfWork(), uuid.uuid4(), uuid.uuid4()
    await invite(uow, requested(resent, "old-link", NOW - timedelta(hours=1), roles=["user"]))
    await invite(uow, requested(resent, "new-link", roles=["admin", "user"]))
    assert (await join(uow, "new-link")).roles == ["admin", "user"]

    await revoke(uow, revoked, "revoked")
    assert uow.fake_grants.rows[revoked].roles == ("user",)
    await invite(uow, requested(revoked, "revoked", roles=["admin", "user"]))
    assert await refused(uow, "revoked") is LinkProblem.REVOKED


async def test_a_role_this_service_does_not_know_refuses_the_link_and_makes_nothing() -> None:
    uow, invitation_id = FakeUsersUnitOfWork(), uuid.uuid4()
    await invite(uow, requested(invitation_id))
    # What a newer invitations service could send before this one learns the role.
    uow.fake_grants.rows[invitation_id].roles = ("owner", "user")
    assert await refused(uow) is LinkProblem.UNKNOWN_ROLE
    assert uow.fake_grants.rows[invitation_id].state is GrantState.OPEN
    assert not uow.fake_users.rows and not uow.events("UserCreated")
    assert await uow.throttles.get("join-address:10.0.0.1") is None  # not a guess


class ResentWhileHashing(FakeHasher):
    """The invitation's event arrives again, with other roles, while the password is hashed."""

    def __init__(self, uow: FakeUsersUnitOfWork, event: InvitationIssued) -> None:
        self.uow, self.event = uow, event

    async def hash(self, password: str) -> str:
        await invite(self.uow, self.event)
        return await super().hash(password)


async def test_the_grant_as_locked_decides_the_roles() -> None:
    uow, invitation_id = FakeUsersUnitOfWork(), uuid.uuid4()
    await invite(uow, requested(invitation_id, roles=["admin", "user"]))
    hasher = ResentWhileHashing(uow, requested(invitation_id, roles=["user"]))
    assert (await join(uow, hasher=hasher)).roles == ["user"]
