"""Reusable invite links, on the users service's side: the link grant's rules (open until
revoked, expiry or never, a cap, a domain, roles; late and early events), and redemption
against in-memory fakes (an account per use with the typed address and the link's roles, not
verified; UserCreated with the link's id; the domain checked again at creation; guesses and
accounts per client address throttled)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from onboarding_shared.contract import InviteLinkIssued, InviteLinkRevoked, Role, new_event
from tests.support.fake_users import FakeHasher, FakeUsersUnitOfWork
from users.domain.invitations import LinkProblem
from users.domain.invite_links import InviteLinkGrant, LinkGrantState, domains_of
from users.domain.model import User, UserStatus
from users.domain.passwords import PasswordPolicy, hash_link_token
from users.domain.rules import FieldProblem, InvalidFields
from users.domain.throttling import ThrottlePolicy
from users.service_layer import joining
from users.service_layer.accounts import AccountPolicy
from users.service_layer.errors import JoinRefused, JoinThrottled, LinkJoinsThrottled
from users.service_layer.joining import LinkJoinForm
from users.service_layer.unit_of_work import DuplicateField, InviteLinkGrantRepository

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=7)
USER: tuple[str, ...] = ("user",)
POLICY = AccountPolicy(
    passwords=PasswordPolicy(min_length=10),
    workspace_name="Acme Chat",
    public_url="https://chat.acme.test",
    password_link_ttl=timedelta(hours=72),
)
THROTTLING = ThrottlePolicy(max_join_failures_per_address=3, max_link_joins_per_address=50)
TOKEN = "invite-link-token-" + "x" * 25
PASSWORD = "Analytical-engine-1"


# The grant's rules


def link(
    *,
    max_uses: int = 3,
    expires_at: datetime | None = LATER,
    allowed_domain: str | None = None,
    roles: tuple[str, ...] = USER,
    issued_at: datetime = NOW,
    token_hash: str = "a" * 64,
) -> InviteLinkGrant:
    return InviteLinkGrant.issued(
        uuid.uuid4(),
        token_hash=token_hash,
        issued_at=issued_at,
        expires_at=expires_at,
        max_uses=max_uses,
        allowed_domain=allowed_domain,
        roles=roles,
    )


def reissue(
    held: InviteLinkGrant,
    *,
    issued_at: datetime,
    token_hash: str = "b" * 64,
    max_uses: int = 3,
    allowed_domain: str | None = None,
) -> bool:
    return held.issue_again(
        token_hash=token_hash,
        issued_at=issued_at,
        expires_at=LATER,
        max_uses=max_uses,
        allowed_domain=allowed_domain,
        roles=USER,
    )


def test_a_link_makes_accounts_up_to_its_cap_then_is_used_up() -> None:
    grant = link(max_uses=2)
    for _ in range(2):
        assert grant.problem(NOW) is None
        grant.use(NOW)
    assert (grant.uses, grant.problem(NOW)) == (2, LinkProblem.USED)
    with pytest.raises(ValueError, match="used"):
        grant.use(NOW)
    assert grant.uses == 2


def test_a_link_expires_at_its_expiry_or_never() -> None:
    expiring = link(expires_at=NOW + timedelta(seconds=1))
    assert expiring.problem(NOW) is None
    assert expiring.problem(NOW + timedelta(seconds=1)) is LinkProblem.EXPIRED
    forever = link(expires_at=None)
    assert forever.problem(NOW + timedelta(days=3650)) is None


def test_a_revoked_link_stays_revoked_whatever_arrives_after() -> None:
    grant = link()
    assert grant.revoke() and not grant.revoke()
    assert grant.problem(NOW) is LinkProblem.REVOKED
    assert not reissue(grant, issued_at=NOW + timedelta(hours=1))
    assert grant.state is LinkGrantState.REVOKED and grant.token_hash == "a" * 64


def test_a_revocation_that_overtakes_its_issue_is_remembered() -> None:
    early = InviteLinkGrant.revoked_early(uuid.uuid4())
    assert early.problem(NOW) is LinkProblem.REVOKED
    # The issue it was waiting for: learnt, the link stays closed.
    assert reissue(early, issued_at=NOW, allowed_domain="example.com")
    assert early.token_hash == "b" * 64 and early.allowed_domain == "example.com"
    assert early.problem(NOW) is LinkProblem.REVOKED
    assert not reissue(early, issued_at=NOW + timedelta(hours=1), token_hash="c" * 64)


def test_a_regenerate_replaces_the_token_and_terms_and_keeps_the_uses() -> None:
    grant = link(max_uses=3)
    grant.use(NOW)
    assert reissue(grant, issued_at=NOW + timedelta(minutes=1), max_uses=5)
    assert (grant.token_hash, grant.max_uses, grant.uses) == ("b" * 64, 5, 1)
    # An older issue arriving late, or the same one again, changes nothing.
    assert not reissue(grant, issued_at=NOW, token_hash="a" * 64)
    assert not reissue(grant, issued_at=NOW + timedelta(minutes=1), token_hash="c" * 64)
    assert grant.token_hash == "b" * 64


def test_a_role_this_service_does_not_know_makes_the_link_unusable() -> None:
    grant = link(roles=("owner", "user"))
    assert grant.problem(NOW) is LinkProblem.UNKNOWN_ROLE
    with pytest.raises(ValueError, match="unknown_role"):
        grant.use(NOW)
    # Revoked, expired and used up come first.
    assert link(roles=("owner",), max_uses=1, expires_at=NOW).problem(NOW) is LinkProblem.EXPIRED


@pytest.mark.parametrize(
    ("address", "admitted"),
    [
        ("ada@example.com", True),
        ("Ada@EXAMPLE.COM", True),
        ("ada@mail.example.com", False),
        ("ada@example.com.evil.org", False),
        ("ada@evilexample.com", False),
        ("ada@example.co", False),
        ("example.com@evil.org", False),
        ("not-an-address", False),
    ],
)
def test_the_domain_must_match_exactly_whatever_the_case(address: str, admitted: bool) -> None:
    grant = link(allowed_domain="Example.COM")
    assert grant.allowed_domain == "example.com"
    assert grant.admits(address) is admitted
    assert link().admits(address)  # no domain: any address


def test_an_international_domain_matches_in_either_spelling_and_nothing_is_folded() -> None:
    assert link(allowed_domain="xn--bcher-kva.example").admits("ada@bücher.example")
    assert link(allowed_domain="bücher.example").admits("ada@xn--bcher-kva.example")
    assert not link(allowed_domain="strasse.de").admits("ada@straße.de")
    assert domains_of("ada@Bücher.Example") == {"bücher.example", "xn--bcher-kva.example"}


def test_the_address_check_says_which_domain() -> None:
    grant = link(allowed_domain="example.com")
    assert grant.check_address("ada@example.com") == "ada@example.com"
    with pytest.raises(FieldProblem, match=r"use your @example\.com address"):
        grant.check_address("ada@elsewhere.org")


# Redemption, against fakes


class FakeInviteLinkGrantRepository(InviteLinkGrantRepository):
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, InviteLinkGrant] = {}

    def add(self, grant: InviteLinkGrant) -> None:
        self.rows[grant.link_id] = grant

    async def get(self, link_id: uuid.UUID) -> InviteLinkGrant | None:
        return self.rows.get(link_id)

    async def find_by_token_hash(
        self, token_hash: str, *, for_update: bool = False
    ) -> InviteLinkGrant | None:
        return next((g for g in self.rows.values() if g.token_hash == token_hash), None)


class LinksUnitOfWork(FakeUsersUnitOfWork):
    """The users fake with invite links; their changes too stay only if committed."""

    def __init__(self) -> None:
        self.fake_links = FakeInviteLinkGrantRepository()
        self._saved_links: dict[uuid.UUID, InviteLinkGrant] = {}
        super().__init__()
        self.links = self.fake_links

    async def rollback(self) -> None:
        await super().rollback()
        self.fake_links.rows = copy.deepcopy(self._saved_links)

    def _save(self) -> None:
        super()._save()
        self._saved_links = copy.deepcopy(self.fake_links.rows)


def issued(
    link_id: uuid.UUID,
    token: str = TOKEN,
    *,
    max_uses: int = 10,
    expires_at: datetime | None = LATER,
    allowed_domain: str | None = None,
    roles: Sequence[Role] = ("user",),
    issued_at: datetime = NOW,
) -> InviteLinkIssued:
    return InviteLinkIssued(
        link_id=link_id,
        token_hash=hash_link_token(token),
        expires_at=expires_at,
        max_uses=max_uses,
        allowed_domain=allowed_domain,
        roles=list(roles),
        issued_at=issued_at,
    )


async def publish(uow: LinksUnitOfWork, data: InviteLinkIssued) -> None:
    await joining.record_invite_link(uow, new_event(data, producer="invitations"))


async def revoke(uow: LinksUnitOfWork, link_id: uuid.UUID) -> None:
    event = InviteLinkRevoked(link_id=link_id, revoked_at=NOW)
    await joining.record_invite_link_revocation(uow, new_event(event, producer="invitations"))


def form(n: int = 0, *, email: str | None = None, username: str | None = None) -> LinkJoinForm:
    return LinkJoinForm(
        email=email or f"person{n}@example.com",
        name=f"Person {n}",
        username=username or f"person{n}",
        password=PASSWORD,
    )


async def redeem(
    uow: LinksUnitOfWork,
    token: str = TOKEN,
    join_form: LinkJoinForm | None = None,
    *,
    now: datetime = NOW,
    address: str = "10.0.0.1",
    throttling: ThrottlePolicy = THROTTLING,
    hasher: FakeHasher | None = None,
) -> User:
    return await joining.join_by_link(
        uow,
        token,
        join_form or form(),
        address=address,
        policy=POLICY,
        hasher=hasher or FakeHasher(),
        throttling=throttling,
        now=now,
    )


async def refused(
    uow: LinksUnitOfWork,
    token: str = TOKEN,
    join_form: LinkJoinForm | None = None,
    *,
    now: datetime = NOW,
) -> LinkProblem:
    with pytest.raises(JoinRefused) as raised:
        await redeem(uow, token, join_form or form(99), now=now)
    return raised.value.problem


async def test_each_use_makes_a_pending_unverified_account_and_announces_the_link() -> None:
    uow, link_id = LinksUnitOfWork(), uuid.uuid4()
    await publish(uow, issued(link_id, roles=["admin", "user"]))
    user = await redeem(uow, join_form=form(email="Ada@Example.com", username="ada"))
    assert (user.status, user.verified, user.roles) == (
        UserStatus.PENDING,
        False,
        ["admin", "user"],
    )
    assert (user.email, user.username, user.password_hash) == (
        "Ada@example.com",
        "ada",
        f"hashed:{PASSWORD}",
    )
    assert uow.fake_links.rows[link_id].uses == 1
    [created] = uow.events("UserCreated")
    assert (created.data.user_id, created.data.invite_link_id) == (user.id, link_id)
    assert created.data.invitation_id is None and created.data.verified is False
    wire = " ".join(event.to_json().decode() for event in uow.published)
    assert TOKEN not in wire and PASSWORD not in wire


async def test_the_link_makes_at_most_its_cap_of_accounts() -> None:
    uow, link_id = LinksUnitOfWork(), uuid.uuid4()
    await publish(uow, issued(link_id, max_uses=3))
    for n in range(3):
        await redeem(uow, join_form=form(n))
    assert await refused(uow) is LinkProblem.USED
    assert len(uow.fake_users.rows) == 3 and uow.fake_links.rows[link_id].uses == 3
    assert await uow.throttles.get("join-address:10.0.0.1") is None  # a known link: no guess


async def test_expired_revoked_and_unknown_links_are_refused_and_make_nothing() -> None:
    uow = LinksUnitOfWork()
    await publish(uow, issued(uuid.uuid4(), "expiring", expires_at=NOW + timedelta(minutes=1)))
    assert await refused(uow, "expiring", now=NOW + timedelta(minutes=1)) is LinkProblem.EXPIRED
    revoked = uuid.uuid4()
    await publish(uow, issued(revoked, "revoked"))
    await revoke(uow, revoked)
    assert await refused(uow, "revoked") is LinkProblem.REVOKED
    assert await refused(uow, "never-issued") is LinkProblem.UNKNOWN
    await publish(uow, issued(uuid.uuid4(), "forever", expires_at=None))
    assert await redeem(uow, "forever", now=NOW + timedelta(days=3650))
    assert len(uow.fake_users.rows) == 1


async def test_a_revocation_that_overtakes_its_issue_still_wins() -> None:
    uow, link_id = LinksUnitOfWork(), uuid.uuid4()
    await revoke(uow, link_id)
    await publish(uow, issued(link_id))
    assert await refused(uow) is LinkProblem.REVOKED
    assert uow.fake_links.rows[link_id].token_hash == hash_link_token(TOKEN)


async def test_a_regenerate_kills_the_old_token_and_the_new_one_carries_on_counting() -> None:
    uow, link_id = LinksUnitOfWork(), uuid.uuid4()
    await publish(uow, issued(link_id, "old-token", max_uses=2))
    await redeem(uow, "old-token", form(1))
    await publish(uow, issued(link_id, "new-token", max_uses=2, issued_at=NOW + timedelta(hours=1)))
    assert await refused(uow, "old-token") is LinkProblem.UNKNOWN
    await redeem(uow, "new-token", form(2))
    assert await refused(uow, "new-token") is LinkProblem.USED
    # The first issue, delivered late again as another event, cannot bring the old token back.
    await publish(uow, issued(link_id, "old-token", max_uses=2))
    assert await refused(uow, "old-token") is LinkProblem.UNKNOWN


async def test_each_event_is_applied_once() -> None:
    uow, link_id = LinksUnitOfWork(), uuid.uuid4()
    event = new_event(issued(link_id, max_uses=1), producer="invitations")
    await joining.record_invite_link(uow, event)
    await redeem(uow)
    await joining.record_invite_link(uow, event)  # redelivered
    assert uow.fake_links.rows[link_id].uses == 1
    assert await refused(uow) is LinkProblem.USED


async def test_an_address_outside_the_domain_is_refused_and_nothing_is_made() -> None:
    uow, link_id = LinksUnitOfWork(), uuid.uuid4()
    await publish(uow, issued(link_id, allowed_domain="example.com"))
    for address in ("ada@elsewhere.org", "ada@mail.example.com", "ada@example.com.evil.org"):
        with pytest.raises(InvalidFields) as invalid:
            await redeem(uow, join_form=form(email=address))
        assert invalid.value.problems == {
            "email": "use your @example.com address: this link takes no other"
        }
    # Every problem at once, the domain's too.
    with pytest.raises(InvalidFields) as several:
        await redeem(uow, join_form=LinkJoinForm("ada@elsewhere.org", " ", "a b", "short"))
    assert set(several.value.problems) == {"email", "name", "username", "password"}
    assert not uow.fake_users.rows and not uow.events("UserCreated")
    assert uow.fake_links.rows[link_id].uses == 0
    assert (await redeem(uow, join_form=form(email="ADA@EXAMPLE.COM"))).email == "ADA@example.com"


class RegeneratedWhileHashing(FakeHasher):
    """A new InviteLinkIssued arrives while the password is hashed, between the first check of
    the address and the account's creation."""

    def __init__(self, uow: LinksUnitOfWork, event: InviteLinkIssued) -> None:
        self.uow, self.event = uow, event

    async def hash(self, password: str) -> str:
        await publish(self.uow, self.event)
        return await super().hash(password)


async def test_the_domain_is_checked_again_at_creation_against_the_link_as_locked() -> None:
    uow, link_id = LinksUnitOfWork(), uuid.uuid4()
    await publish(uow, issued(link_id))
    # Same token, new terms (a newer issue): only @example.com from now on.
    later = issued(link_id, allowed_domain="example.com", issued_at=NOW + timedelta(minutes=1))
    with pytest.raises(InvalidFields) as invalid:
        await redeem(
            uow,
            join_form=form(email="ada@elsewhere.org"),
            hasher=RegeneratedWhileHashing(uow, later),
        )
    assert "email" in invalid.value.problems
    assert not uow.fake_users.rows and uow.fake_links.rows[link_id].uses == 0


async def test_a_link_used_up_while_hashing_makes_nothing() -> None:
    uow, link_id = LinksUnitOfWork(), uuid.uuid4()
    await publish(uow, issued(link_id, max_uses=1))

    class UsedMeanwhile(FakeHasher):
        async def hash(self, password: str) -> str:
            uow.fake_links.rows[link_id].uses = 1
            return await super().hash(password)

    with pytest.raises(JoinRefused) as raised:
        await redeem(uow, hasher=UsedMeanwhile())
    assert raised.value.problem is LinkProblem.USED and not uow.fake_users.rows


async def test_taken_addresses_and_usernames_are_named_and_spend_no_use() -> None:
    uow, link_id = LinksUnitOfWork(), uuid.uuid4()
    await publish(uow, issued(link_id))
    await redeem(uow, join_form=form(1))
    with pytest.raises(DuplicateField) as duplicate:
        await redeem(uow, join_form=form(2, email="PERSON1@example.com", username="Person1"))
    assert duplicate.value.fields == ("email", "username")
    assert uow.fake_links.rows[link_id].uses == 1 and len(uow.events("UserCreated")) == 1


async def test_a_role_the_service_does_not_know_refuses_the_link() -> None:
    uow, link_id = LinksUnitOfWork(), uuid.uuid4()
    await publish(uow, issued(link_id))
    uow.fake_links.rows[link_id].roles = ("owner", "user")
    assert await refused(uow) is LinkProblem.UNKNOWN_ROLE
    assert not uow.fake_users.rows and uow.fake_links.rows[link_id].uses == 0


async def test_guessing_links_is_throttled_per_client_with_the_join_pages_count() -> None:
    uow = LinksUnitOfWork()
    await publish(uow, issued(uuid.uuid4()))
    for guess in range(THROTTLING.max_join_failures_per_address):
        assert await refused(uow, f"guess-{guess}") is LinkProblem.UNKNOWN
    with pytest.raises(JoinThrottled) as throttled:
        await redeem(uow)  # even the right link, from this address, for now
    assert throttled.value.retry_after == THROTTLING.lockout.total_seconds()
    assert await redeem(uow, address="10.0.0.2")  # another client is not slowed down
    # The same count as unknown invitation links: guessing either kind of link.
    with pytest.raises(JoinThrottled):
        await joining.invitation_for_link(
            uow, "x", address="10.0.0.1", throttling=THROTTLING, now=NOW
        )


async def test_accounts_through_links_are_limited_per_client_address() -> None:
    uow, throttling = LinksUnitOfWork(), ThrottlePolicy(max_link_joins_per_address=2)
    await publish(uow, issued(uuid.uuid4(), max_uses=10))
    for n in range(2):
        await redeem(uow, join_form=form(n), throttling=throttling)
    with pytest.raises(LinkJoinsThrottled) as throttled:
        await redeem(uow, join_form=form(2), throttling=throttling)
    assert throttled.value.retry_after == throttling.lockout.total_seconds()
    with pytest.raises(LinkJoinsThrottled):  # the page, too
        await joining.invite_link_for_token(
            uow, TOKEN, address="10.0.0.1", throttling=throttling, now=NOW
        )
    assert len(uow.fake_users.rows) == 2
    # Another client may; this one again once the lockout is over.
    await redeem(uow, join_form=form(3), throttling=throttling, address="10.0.0.2")
    await redeem(uow, join_form=form(4), throttling=throttling, now=NOW + throttling.lockout)
    assert len(uow.fake_users.rows) == 4


async def test_addresses_found_taken_count_like_accounts_made() -> None:
    """Otherwise a link's form would tell, without limit, which addresses have an account."""
    uow, throttling = LinksUnitOfWork(), ThrottlePolicy(max_link_joins_per_address=2)
    await publish(uow, issued(uuid.uuid4()))
    await redeem(uow, join_form=form(1), address="10.0.0.9", throttling=throttling)
    for n in range(2):
        with pytest.raises(DuplicateField):
            await redeem(
                uow, join_form=form(n + 2, email="person1@example.com"), throttling=throttling
            )
    with pytest.raises(LinkJoinsThrottled):
        await redeem(uow, join_form=form(5), throttling=throttling)
    # A taken username alone tells nothing about addresses: not counted.
    with pytest.raises(DuplicateField):
        await redeem(
            uow, join_form=form(6, username="person1"), address="10.0.0.3", throttling=throttling
        )
    await redeem(uow, join_form=form(7), address="10.0.0.3", throttling=throttling)
