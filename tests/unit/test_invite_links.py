"""Reusable invite links in the invitations service, with fakes: their settings, their URL
(derived, never stored), regenerating and revoking, and their uses counted from UserCreated."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from invitations.domain.links import InvalidLink, InviteLink, LinkStatus, allowed_domain
from invitations.domain.model import InvitationError, RoleNotAllowed, hash_token
from invitations.service_layer import links, services
from invitations.service_layer.links import LinkCommand
from invitations.service_layer.unit_of_work import LinkRepository
from onboarding_shared.contract import UserCreated, new_event
from tests.unit.test_invitation_services import MINTER, NOW, POLICY, FakeUnitOfWork


class FakeLinks(LinkRepository):
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, InviteLink] = {}

    def add(self, link: InviteLink) -> None:
        self.rows[link.id] = link

    async def get(self, link_id: uuid.UUID) -> InviteLink | None:
        return self.rows.get(link_id)

    async def newest_first(self, limit: int) -> list[InviteLink]:
        return sorted(self.rows.values(), key=lambda link: link.created_at, reverse=True)[:limit]


class LinkingUnitOfWork(FakeUnitOfWork):
    links: FakeLinks

    def __init__(self) -> None:
        super().__init__()
        self.links = FakeLinks()


async def create(uow: LinkingUnitOfWork, **fields: object) -> links.IssuedLink:
    command = LinkCommand(**{"max_uses": 10, "creator_is_admin": True, **fields})  # type: ignore[arg-type]
    return await links.create_link(uow, command, policy=POLICY, minter=MINTER, now=NOW)


@pytest.mark.parametrize(
    ("given", "kept"), [("Example.COM", "example.com"), ("@acme.test", "acme.test"), (" ", None)]
)
def test_a_domain_is_kept_lower_cased(given: str, kept: str | None) -> None:
    assert allowed_domain(given) == kept


@pytest.mark.parametrize("given", ["example", "a@b.com", "exa mple.com", "-x.com"])
def test_what_is_not_a_domain_is_refused(given: str) -> None:
    with pytest.raises(InvalidLink, match="not an email domain"):
        allowed_domain(given)


async def test_a_link_is_announced_by_its_hash_and_shown_with_its_url() -> None:
    uow = LinkingUnitOfWork()
    issued = await create(uow, allowed_domain="Example.com", roles=("admin",), max_uses=3)
    token = issued.url.rsplit("/", 1)[1]
    assert issued.url.startswith("https://chat.acme.test/join/link/")
    [event] = uow.events("InviteLinkIssued")
    assert event.data.token_hash == hash_token(token) and token not in event.to_json().decode()
    assert (event.data.max_uses, event.data.allowed_domain, event.data.roles) == (
        3,
        "example.com",
        ["admin"],
    )
    assert event.data.expires_at == NOW + timedelta(hours=POLICY.default_ttl_hours)
    [listed] = await links.list_links(uow, policy=POLICY, minter=MINTER)
    assert listed.url == issued.url  # derived again from the salt: the URL is never stored


async def test_never_expiring_links_unless_the_workspace_forbids_them() -> None:
    uow = LinkingUnitOfWork()
    issued = await create(uow, never_expires=True)
    assert (
        issued.link.expires_at is None and uow.events("InviteLinkIssued")[0].data.expires_at is None
    )
    forbidding = replace(POLICY, links_may_never_expire=False)
    with pytest.raises(InvalidLink, match="does not allow links that never expire"):
        await links.create_link(
            uow,
            LinkCommand(max_uses=5, never_expires=True, creator_is_admin=True),
            policy=forbidding,
            minter=MINTER,
            now=NOW,
        )
    assert len(uow.links.rows) == 1


async def test_only_an_admin_may_create_a_link_that_makes_admins() -> None:
    uow = LinkingUnitOfWork()
    with pytest.raises(RoleNotAllowed):
        await create(uow, roles=("admin",), creator_is_admin=False)
    with pytest.raises(InvalidLink, match="max_uses"):
        await create(uow, max_uses=0)
    assert uow.links.rows == {}


async def test_regenerating_gives_a_new_url_and_revoking_ends_it() -> None:
    uow = LinkingUnitOfWork()
    first = await create(uow)
    again = await links.regenerate_link(
        uow, first.link.id, policy=POLICY, minter=MINTER, now=NOW + timedelta(hours=1)
    )
    assert again.url != first.url
    hashes = [e.data.token_hash for e in uow.events("InviteLinkIssued")]
    assert len(set(hashes)) == 2 and hashes[1] == again.link.token_hash
    await links.revoke_link(uow, first.link.id, policy=POLICY, minter=MINTER, now=NOW)
    await links.revoke_link(uow, first.link.id, policy=POLICY, minter=MINTER, now=NOW)
    assert len(uow.events("InviteLinkRevoked")) == 1
    assert first.link.status_at(NOW) is LinkStatus.REVOKED
    with pytest.raises(InvitationError, match="revoked"):
        await links.regenerate_link(uow, first.link.id, policy=POLICY, minter=MINTER, now=NOW)
    with pytest.raises(services.NotFound):
        await links.revoke_link(uow, uuid.uuid4(), policy=POLICY, minter=MINTER, now=NOW)


async def test_uses_are_counted_from_the_accounts_created_and_show_when_it_is_used_up() -> None:
    uow = LinkingUnitOfWork()
    issued = await create(uow, max_uses=2)
    for number in range(2):
        created = new_event(
            UserCreated(
                user_id=uuid.uuid4(),
                email=f"p{number}@example.com",
                username=f"p{number}",
                name="P",
                roles=["user"],
                status="pending",
                created_at=NOW,
                invite_link_id=issued.link.id,
            ),
            producer="users",
        )
        await services.record_member(uow, created, policy=POLICY)
        await services.record_member(uow, created, policy=POLICY)  # redelivered: counted once
    assert issued.link.uses == 2
    assert issued.link.status_at(NOW) is LinkStatus.USED_UP


def test_an_expired_link_says_so() -> None:
    link = InviteLink.create(
        now=NOW,
        minter=MINTER,
        max_uses=1,
        valid_for=timedelta(hours=1),
        allowed_domain=None,
        roles=["user"],
    )
    assert link.status_at(NOW) is LinkStatus.ACTIVE
    assert link.status_at(NOW + timedelta(hours=1)) is LinkStatus.EXPIRED
