"""Joining through a reusable invite link, against the real broker and PostgreSQL: the users
service learns the link from InviteLinkIssued; each use makes one pending, unverified account
with the typed address and the link's roles, and UserCreated carries the link's id; the cap
holds under 50 parallel redemptions (through the page on PostgreSQL; through the use case on
SQLite and PostgreSQL); a regenerate kills the old URL; a revocation stops the link; an address
outside the link's domain is refused and nothing made; guesses and accounts per client are
throttled."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from onboarding_shared.contract import (
    Envelope,
    InviteLinkIssued,
    InviteLinkRevoked,
    Role,
    UserCreated,
    new_event,
)
from onboarding_shared.db import create_engine, session_factory
from onboarding_shared.schema import migrate
from tests.support.broker import EventProbe, Namespace, eventually, publish_raw
from tests.support.databases import DatabaseFactory
from tests.support.fake_users import FakeHasher
from tests.support.services import in_process
from tests.support.users_service import token_for, users_settings
from users.adapters import orm
from users.adapters.unit_of_work import SqlAlchemyUsersUnitOfWork
from users.bootstrap import MIGRATIONS, create_app
from users.domain.invitations import LinkProblem
from users.domain.passwords import PasswordPolicy, hash_link_token
from users.domain.throttling import ThrottlePolicy
from users.service_layer import joining
from users.service_layer.accounts import AccountPolicy
from users.service_layer.errors import JoinRefused
from users.service_layer.joining import LinkJoinForm

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

MAX_GUESSES = 4
MAX_JOINS = 3
PASSWORD = "Analytical-engine-1"


def person(n: int | str, **fields: str) -> dict[str, str]:
    return {
        "email": f"person{n}@example.com",
        "name": f"Person {n}",
        "username": f"person{n}",
        "password": PASSWORD,
        **fields,
    }


@dataclass
class Linking:
    client: httpx.AsyncClient
    app: FastAPI
    amqp_url: str
    namespace: Namespace
    database_url: str

    async def issue(
        self,
        link_id: uuid.UUID | None = None,
        *,
        max_uses: int = 10,
        expires_in: timedelta | None = timedelta(days=7),
        allowed_domain: str | None = None,
        roles: Sequence[Role] = ("user",),
    ) -> tuple[uuid.UUID, str]:
        """Publish InviteLinkIssued as the invitations service does (a regenerate when the link
        is known), and wait until the users service holds the new token's hash."""
        link_id = link_id or uuid.uuid4()
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        await self.publish(
            InviteLinkIssued(
                link_id=link_id,
                token_hash=hash_link_token(token),
                expires_at=None if expires_in is None else now + expires_in,
                max_uses=max_uses,
                allowed_domain=allowed_domain,
                roles=list(roles),
                issued_at=now,
            ),
            "invite_link.issued.v1",
        )
        await self.wait_for(link_id, "token_hash", hash_link_token(token))
        return link_id, token

    async def revoke(self, link_id: uuid.UUID) -> None:
        await self.publish(
            InviteLinkRevoked(link_id=link_id, revoked_at=datetime.now(UTC)),
            "invite_link.revoked.v1",
        )
        await self.wait_for(link_id, "state", "revoked")

    async def publish(self, data: InviteLinkIssued | InviteLinkRevoked, key: str) -> None:
        event = new_event(data, producer="invitations")
        await publish_raw(self.amqp_url, self.namespace.exchange, key, event.to_json())

    async def wait_for(self, link_id: uuid.UUID, column: str, value: Any) -> None:
        """Wait on the database, not the page: failed page lookups count as guesses."""

        async def current() -> bool:
            return bool(await self.column(link_id, column) == value)

        await eventually(current)

    async def column(self, link_id: uuid.UUID, column: str) -> Any:
        assert column in {"token_hash", "state", "uses"}
        engine = create_async_engine(self.database_url)
        try:
            async with engine.connect() as connection:
                return await connection.scalar(
                    text(f"SELECT {column} FROM invite_link_grants WHERE link_id = :id"),
                    {"id": link_id},
                )
        finally:
            await engine.dispose()

    async def accounts(self) -> int:
        engine = create_async_engine(self.database_url)
        try:
            async with engine.connect() as connection:
                found: int = await connection.scalar(
                    text("SELECT count(*) FROM users WHERE username LIKE 'person%'")
                )
                return found
        finally:
            await engine.dispose()

    def from_address(self, address: str) -> httpx.AsyncClient:
        """A client whose requests come from ``address``, as the throttles see it."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://service")


@pytest.fixture
async def linking(
    databases: DatabaseFactory, amqp_url: str, namespace: Namespace, probe: EventProbe
) -> AsyncIterator[Linking]:
    settings = await users_settings(
        databases,
        amqp_url,
        namespace,
        join_max_failures_per_address=MAX_GUESSES,
        max_link_joins_per_address=MAX_JOINS,
    )
    async with in_process(create_app, settings) as client:
        app: FastAPI = client.app  # type: ignore[attr-defined]
        yield Linking(client, app, amqp_url, namespace, settings.database_url)


def created_through(probe: EventProbe, link_id: uuid.UUID) -> list[dict[str, Any]]:
    return [
        event["data"]
        for event in probe.events("user.created.v1")
        if event["data"].get("invite_link_id") == str(link_id)
    ]


async def test_the_page_asks_for_the_address_and_names_the_domain(linking: Linking) -> None:
    _, token = await linking.issue(allowed_domain="example.com", roles=["admin", "user"])
    page = await linking.client.get(f"/join/link/{token}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "form-action 'self'" in page.headers["content-security-policy"]
    for expected in (
        "Join Acme Chat",
        "Use your <strong>@example.com</strong> address",
        'name="email"',
        'name="name"',
        'name="username"',
        'type="password"',
        "Your account will be an admin of Acme Chat",
    ):
        assert expected in page.text
    _, anyone = await linking.issue()
    plain = await linking.client.get(f"/join/link/{anyone}")
    assert plain.status_code == 200
    assert "Use your" not in plain.text and "be an admin" not in plain.text


async def test_each_use_makes_a_pending_unverified_account_announced_with_the_link(
    linking: Linking, probe: EventProbe
) -> None:
    link_id, token = await linking.issue(roles=["admin", "user"])
    response = await linking.client.post(f"/join/link/{token}", json=person("ada"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["email"], body["username"], body["status"]) == (
        "personada@example.com",
        "personada",
        "pending",
    )
    assert (body["verified"], body["roles"]) == (False, ["admin", "user"])
    [created] = await eventually(lambda: created_through(probe, link_id))
    assert (created["user_id"], created["roles"]) == (body["id"], ["admin", "user"])
    assert created["invitation_id"] is None and created["verified"] is False
    ours = str([e for e in probe.events() if e["producer"] == "users"])
    assert token not in ours and PASSWORD not in ours
    assert await token_for(linking.client, "personada", PASSWORD)

    form = await linking.client.post(f"/join/link/{token}", data=person("grace"))
    assert form.status_code == 201, form.text
    assert form.headers["content-type"].startswith("text/html")
    assert "Your account is ready: sign in as persongrace" in form.text
    await eventually(lambda: len(created_through(probe, link_id)) == 2)
    assert await linking.column(link_id, "uses") == 2


async def test_fifty_parallel_redemptions_of_a_ten_use_link_make_exactly_ten_accounts(
    linking: Linking, probe: EventProbe
) -> None:
    link_id, token = await linking.issue(max_uses=10)
    # A client address each: the link's cap must stop them, not the throttle.
    clients = [linking.from_address(f"10.50.0.{n}") for n in range(50)]
    try:
        answers = await asyncio.gather(
            *(
                client.post(f"/join/link/{token}", json=person(n))
                for n, client in enumerate(clients)
            )
        )
    finally:
        for client in clients:
            await client.aclose()
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [201] * 10 + [410] * 40, [a.text for a in answers if a.status_code >= 500]
    assert all("used up" in a.json()["detail"] for a in answers if a.status_code == 410), answers
    assert await linking.accounts() == 10
    assert await linking.column(link_id, "uses") == 10
    await eventually(lambda: len(created_through(probe, link_id)) == 10)
    # The answers mean committed to the outbox; the relay publishes a moment later.
    await eventually(lambda: len(created_through(probe, link_id)) >= 10)
    await probe.caught_up()
    assert len(created_through(probe, link_id)) == 10
    page = await linking.client.get(f"/join/link/{token}")
    assert page.status_code == 410 and "has been used up" in page.text


async def test_a_regenerate_kills_the_old_url_and_the_new_one_works(
    linking: Linking, probe: EventProbe
) -> None:
    link_id, old = await linking.issue(max_uses=5)
    assert (await linking.client.post(f"/join/link/{old}", json=person(1))).status_code == 201
    _, new = await linking.issue(link_id, max_uses=5)
    stale = await linking.client.post(f"/join/link/{old}", json=person(2))
    assert stale.status_code == 404 and "not valid" in stale.json()["detail"]
    assert (await linking.client.get(f"/join/link/{old}")).status_code == 404
    assert (await linking.client.post(f"/join/link/{new}", json=person(3))).status_code == 201
    await eventually(lambda: len(created_through(probe, link_id)) == 2)
    assert await linking.column(link_id, "uses") == 2  # the uses carry over


async def test_a_revoked_link_makes_nothing(linking: Linking) -> None:
    link_id, token = await linking.issue()
    await linking.revoke(link_id)
    page = await linking.client.get(f"/join/link/{token}")
    assert page.status_code == 410 and "was revoked" in page.text
    answer = await linking.client.post(f"/join/link/{token}", json=person(1))
    assert answer.status_code == 410 and "was revoked" in answer.json()["detail"]
    form = await linking.client.post(f"/join/link/{token}", data=person(1))
    assert form.status_code == 410 and "was revoked" in form.text
    assert await linking.accounts() == 0


async def test_an_expired_link_makes_nothing(linking: Linking) -> None:
    _, token = await linking.issue(expires_in=timedelta(seconds=1))

    async def has_expired() -> bool:  # a known link, expired or not, counts as no guess
        return (await linking.client.get(f"/join/link/{token}")).status_code == 410

    await eventually(has_expired, timeout=10)
    answer = await linking.client.post(f"/join/link/{token}", json=person(1))
    assert answer.status_code == 410 and "has expired" in answer.json()["detail"]
    assert await linking.accounts() == 0


async def test_an_address_outside_the_links_domain_is_refused_and_nothing_made(
    linking: Linking, probe: EventProbe
) -> None:
    link_id, token = await linking.issue(allowed_domain="example.com")
    for address in ("ada@elsewhere.org", "ada@mail.example.com", "ada@example.com.evil.org"):
        answer = await linking.client.post(f"/join/link/{token}", json=person(1, email=address))
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"] == [
            {
                "loc": ["body", "email"],
                "msg": "use your @example.com address: this link takes no other",
                "type": "value_error",
            }
        ]
    form = await linking.client.post(
        f"/join/link/{token}", data=person(1, email="ada@elsewhere.org")
    )
    assert form.status_code == 422
    assert "Email: use your @example.com address" in form.text
    assert 'value="ada@elsewhere.org"' in form.text and PASSWORD not in form.text
    assert await linking.accounts() == 0 and await linking.column(link_id, "uses") == 0
    joined = await linking.client.post(
        f"/join/link/{token}", json=person(1, email="Ada@EXAMPLE.com")
    )
    assert joined.status_code == 201 and joined.json()["email"] == "Ada@example.com"
    # The answer means committed to the outbox; the relay publishes a moment later.
    await eventually(lambda: len(created_through(probe, link_id)) >= 1)
    await probe.caught_up()
    assert len(created_through(probe, link_id)) == 1


async def test_taken_fields_are_named_and_spend_no_use(linking: Linking) -> None:
    link_id, token = await linking.issue()
    assert (await linking.client.post(f"/join/link/{token}", json=person(1))).status_code == 201
    taken = await linking.client.post(f"/join/link/{token}", json=person(2, username="PERSON1"))
    assert taken.status_code == 409
    assert taken.json()["detail"][0]["msg"] == "username is already in use"
    page = await linking.client.post(f"/join/link/{token}", data=person(2, username="person1"))
    assert page.status_code == 409 and "That username is already in use" in page.text
    invalid = await linking.client.post(f"/join/link/{token}", json=person(2, password="short"))
    assert invalid.status_code == 422
    assert [p["loc"] for p in invalid.json()["detail"]] == [["body", "password"]]
    missing = await linking.client.post(f"/join/link/{token}", json={"name": "Grace"})
    assert missing.status_code == 422
    assert await linking.column(link_id, "uses") == 1


async def test_guessing_links_is_throttled_per_client(linking: Linking) -> None:
    _, token = await linking.issue()
    async with linking.from_address("10.60.0.1") as guesser:
        for _ in range(MAX_GUESSES):
            guess = await guesser.get(f"/join/link/{secrets.token_urlsafe(32)}")
            assert guess.status_code == 404 and "not valid" in guess.text
        throttled = await guesser.get(f"/join/link/{token}")
        assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
        posted = await guesser.post(f"/join/link/{token}", json=person(1))
        assert posted.status_code == 429 and int(posted.headers["retry-after"]) > 0
        # The same count as the invitations' join page: guessing links, whichever kind.
        assert (await guesser.get(f"/join/{secrets.token_urlsafe(32)}")).status_code == 429
    assert (await linking.client.get(f"/join/link/{token}")).status_code == 200
    assert await linking.accounts() == 0


async def test_accounts_through_links_are_limited_per_client(linking: Linking) -> None:
    _, token = await linking.issue(max_uses=20)
    async with linking.from_address("10.70.0.1") as client:
        for n in range(MAX_JOINS):
            joined = await client.post(f"/join/link/{token}", json=person(n))
            assert joined.status_code == 201, joined.text
        refused = await client.post(f"/join/link/{token}", json=person(MAX_JOINS))
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert "Too many new accounts" in refused.json()["detail"]
        page = await client.get(f"/join/link/{token}")
        assert page.status_code == 429 and "Too many accounts were made" in page.text
        form = await client.post(f"/join/link/{token}", data=person(MAX_JOINS))
        assert form.status_code == 429 and int(form.headers["retry-after"]) > 0
    assert await linking.accounts() == MAX_JOINS
    # Another client is not slowed down.
    async with linking.from_address("10.70.0.2") as other:
        assert (await other.post(f"/join/link/{token}", json=person(99))).status_code == 201


# The cap under real concurrency, on both databases, through the use case.

POLICY = AccountPolicy(
    passwords=PasswordPolicy(min_length=10),
    workspace_name="Acme Chat",
    public_url="https://chat.acme.test",
    password_link_ttl=timedelta(hours=72),
)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_cap_holds_under_fifty_parallel_redemptions(
    databases: DatabaseFactory, tmp_path: Path, backend: str
) -> None:
    orm.map_domain()
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'users.db'}"
        await asyncio.to_thread(migrate, url, MIGRATIONS)
    else:
        url = await databases.create_migrated("users", MIGRATIONS)
    engine = create_engine(url)
    sessions = session_factory(engine)

    def uow() -> SqlAlchemyUsersUnitOfWork:
        return SqlAlchemyUsersUnitOfWork(sessions, orm.messaging, producer="users")

    try:
        for round_ in range(3):
            link_id, token = uuid.uuid4(), f"link-token-{round_}-{uuid.uuid4().hex}"
            now = datetime.now(UTC)
            issued = InviteLinkIssued(
                link_id=link_id,
                token_hash=hash_link_token(token),
                expires_at=None,
                max_uses=10,
                roles=["user"],
                issued_at=now,
            )
            await joining.record_invite_link(uow(), new_event(issued, producer="invitations"))

            async def redeem(
                n: int, token: str = token, round_: int = round_, now: datetime = now
            ) -> Any:
                return await joining.join_by_link(
                    uow(),
                    token,
                    LinkJoinForm(
                        f"r{round_}p{n}@example.com", f"Person {n}", f"r{round_}p{n}", PASSWORD
                    ),
                    address=f"10.{round_}.0.{n}",
                    policy=POLICY,
                    hasher=FakeHasher(),
                    throttling=ThrottlePolicy(),
                    now=now,
                )

            results = await asyncio.gather(*(redeem(n) for n in range(50)), return_exceptions=True)
            made = [r for r in results if not isinstance(r, BaseException)]
            refused = [r for r in results if isinstance(r, JoinRefused)]
            others = [r for r in results if isinstance(r, BaseException) and r not in refused]
            assert not others, others
            assert len(made) == 10 and all(r.problem is LinkProblem.USED for r in refused)
            async with sessions() as session:
                uses = await session.scalar(
                    select(orm.invite_link_grants.c.uses).where(
                        orm.invite_link_grants.c.link_id == link_id
                    )
                )
                accounts = await session.scalar(
                    select(func.count())
                    .select_from(orm.users)
                    .where(orm.users.c.username.like(f"r{round_}p%"))
                )
                bodies = (
                    await session.scalars(
                        select(orm.messaging.outbox.c.body).where(
                            orm.messaging.outbox.c.event_type == UserCreated.spec.event_type
                        )
                    )
                ).all()
            assert (uses, accounts) == (10, 10)
            announced = [Envelope[UserCreated].model_validate_json(body) for body in bodies]
            assert len([a for a in announced if a.data.invite_link_id == link_id]) == 10
    finally:
        await engine.dispose()
