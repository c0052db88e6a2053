"""Read-then-write invariants under real concurrency, on SQLite (a file, as `make run` uses) and
on PostgreSQL: two units of work on separate sessions, started together with asyncio.gather or
one after the other in both orders, many times over.

- auth-listener: a login and the arrival of its account never miss each other (the account
  ends active, no login stays in pending_logins).
- users: a join and a revocation of the same invitation never both take effect.
- invitations: parallel invitations of one address create exactly one invitation.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_listener.adapters import orm as auth_listener_orm
from auth_listener.adapters.unit_of_work import SqlAlchemyAuthListenerUnitOfWork
from auth_listener.bootstrap import MIGRATIONS as AUTH_LISTENER_MIGRATIONS
from auth_listener.domain.model import Login
from auth_listener.service_layer import services as auth_listener
from auth_listener.service_layer.logged_in import LoggedInAccounts
from auth_listener.service_layer.unit_of_work import AuthListenerUnitOfWork
from invitations.adapters import orm as invitations_orm
from invitations.adapters.unit_of_work import SqlAlchemyInvitationsUnitOfWork
from invitations.bootstrap import MIGRATIONS as INVITATIONS_MIGRATIONS
from invitations.domain.model import Invitation, InvitationStatus, TokenMinter
from invitations.service_layer import services as invitations
from onboarding_shared.contract import (
    InvitationIssued,
    InvitationRevoked,
    UserCreated,
    new_event,
)
from onboarding_shared.db import create_engine, session_factory
from onboarding_shared.schema import migrate
from onboarding_shared.unit_of_work import GroupedUnitsOfWork
from tests.support.databases import DatabaseFactory
from tests.support.fake_users import FakeHasher
from users.adapters import orm as users_orm
from users.adapters.unit_of_work import SqlAlchemyUsersUnitOfWork
from users.bootstrap import MIGRATIONS as USERS_MIGRATIONS
from users.domain.invitations import GrantState, InvitationGrant, LinkProblem
from users.domain.passwords import PasswordPolicy, hash_link_token
from users.domain.throttling import ThrottlePolicy
from users.service_layer import joining
from users.service_layer.accounts import AccountPolicy
from users.service_layer.errors import JoinRefused
from users.service_layer.joining import JoinForm

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROUNDS = 40
Sessions = async_sessionmaker[AsyncSession]
Database = Callable[[str, Path], Awaitable[Sessions]]


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, databases: DatabaseFactory
) -> AsyncIterator[Database]:
    """Makes a migrated database of the parametrised kind; yields sessions of the engine the
    services use (onboarding_shared.db.create_engine)."""
    engines = []

    async def make(label: str, migrations: Path) -> Sessions:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / label}.db"
            await asyncio.to_thread(migrate, url, migrations)
        else:
            url = await databases.create_migrated(label, migrations)
        engine = create_engine(url)
        engines.append(engine)
        return session_factory(engine)

    yield make
    for engine in engines:
        await engine.dispose()


async def together(*steps: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Start every step at once; exceptions are returned, not raised."""
    return await asyncio.gather(*(step() for step in steps), return_exceptions=True)


async def in_order(*steps: Callable[[], Awaitable[Any]]) -> list[Any]:
    results: list[Any] = []
    for step in steps:
        try:
            results.append(await step())
        except Exception as error:
            results.append(error)
    return results


def reraise(results: Sequence[Any]) -> None:
    for result in results:
        if isinstance(result, BaseException):
            raise result


# auth-listener: a login racing the account's creation


async def test_a_login_and_the_creation_of_its_account_never_miss_each_other(
    database: Database,
) -> None:
    auth_listener_orm.map_domain()
    sessions = await database("auth_listener", AUTH_LISTENER_MIGRATIONS)

    def uow() -> SqlAlchemyAuthListenerUnitOfWork:
        return SqlAlchemyAuthListenerUnitOfWork(
            sessions, auth_listener_orm.messaging, producer="auth-listener"
        )

    user_ids: list[uuid.UUID] = []
    for round_ in range(ROUNDS * 4):
        user_id = uuid.uuid4()
        user_ids.append(user_id)
        email = f"racer-{round_}@example.com"
        now = datetime.now(UTC)
        created = new_event(
            UserCreated(
                user_id=user_id,
                email=email,
                username=f"racer{round_}",
                name="Racer",
                roles=["user"],
                status="pending",
                created_at=now,
            ),
            producer="users",
        )

        def login(email: str = email, now: datetime = now) -> Awaitable[Any]:
            return auth_listener.record_login(
                uow(), Login(logged_in_at=now, email=email), event_id=uuid.uuid4(), now=now
            )

        def account(created: Any = created) -> Awaitable[None]:
            return auth_listener.apply_account(uow(), created)

        match round_ % 4:
            case 0:
                reraise(await together(login, account))
            case 1:
                reraise(await together(account, login))
            case 2:
                reraise(await in_order(login, account))
            case _:
                reraise(await in_order(account, login))

    accounts, logins = auth_listener_orm.known_accounts, auth_listener_orm.pending_logins
    async with sessions() as session:
        rows = await session.execute(select(accounts.c.id, accounts.c.status))
        statuses: dict[uuid.UUID, str] = {row.id: row.status for row in rows}
        pending = (await session.execute(select(logins.c.kind, logins.c.value))).all()
    still_pending = [str(user_id) for user_id in user_ids if statuses.get(user_id) != "active"]
    assert still_pending == [], f"{len(still_pending)} of {len(user_ids)} accounts not active"
    assert pending == []


async def test_first_logins_in_one_group_activate_each_account_once_and_are_remembered_after(
    database: Database,
) -> None:
    """Grouped (GroupedUnitsOfWork): a second first login of the same account, in the same
    transaction, sees the first one's activation; the memory of active ids learns of them only
    with the group's commit."""
    auth_listener_orm.map_domain()
    sessions = await database("auth_listener", AUTH_LISTENER_MIGRATIONS)

    def uow() -> SqlAlchemyAuthListenerUnitOfWork:
        return SqlAlchemyAuthListenerUnitOfWork(
            sessions, auth_listener_orm.messaging, producer="auth-listener"
        )

    now = datetime.now(UTC)
    accounts = {f"grouped-{n}@example.com": uuid.uuid4() for n in range(2)}
    for n, (email, user_id) in enumerate(accounts.items()):
        created = UserCreated(
            user_id=user_id,
            email=email,
            username=f"grouped{n}",
            name="Grouped",
            roles=["user"],
            status="pending",
            created_at=now,
        )
        await auth_listener.apply_account(uow(), new_event(created, producer="users"))
    grouped: GroupedUnitsOfWork[AuthListenerUnitOfWork] = GroupedUnitsOfWork(uow)
    memory = LoggedInAccounts(100)
    first, second = accounts

    def login(email: str) -> Awaitable[auth_listener.LoginOutcome]:
        return auth_listener.record_login(
            grouped,
            Login(logged_in_at=now, email=email),
            event_id=uuid.uuid4(),
            now=now,
            logged_in=memory,
        )

    outcomes = await asyncio.gather(login(first), login(first), login(second))

    activated, already = (
        auth_listener.LoginOutcome.ACTIVATED,
        auth_listener.LoginOutcome.ALREADY_ACTIVE,
    )
    assert sorted(outcomes) == sorted([activated, already, activated])
    outbox = auth_listener_orm.messaging.outbox
    async with sessions() as session:
        activations = await session.scalar(
            select(func.count()).select_from(outbox).where(outbox.c.event_type == "UserActivated")
        )
    assert activations == 2
    assert all(user_id in memory for user_id in accounts.values())


# users: joining racing a revocation of the same invitation

JOIN_POLICY = AccountPolicy(
    passwords=PasswordPolicy(min_length=10),
    workspace_name="Acme Chat",
    public_url="https://chat.acme.test",
    password_link_ttl=timedelta(hours=72),
)


class RecordingUsersUnitOfWork(SqlAlchemyUsersUnitOfWork):
    """Notes the grant states each commit writes, to tell which side of a race took effect."""

    written: list[GrantState]

    def __init__(self, *args: Any, written: list[GrantState], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.written = written

    async def commit(self) -> None:
        states = [g.state for g in self.session.dirty if isinstance(g, InvitationGrant)]
        await super().commit()
        self.written.extend(states)


async def test_a_join_and_a_revocation_never_both_take_effect(database: Database) -> None:
    users_orm.map_domain()
    sessions = await database("users", USERS_MIGRATIONS)

    def uow(written: list[GrantState]) -> RecordingUsersUnitOfWork:
        return RecordingUsersUnitOfWork(
            sessions, users_orm.messaging, producer="users", written=written
        )

    lost: list[str] = []
    for round_ in range(ROUNDS * 2):
        invitation_id = uuid.uuid4()
        token = f"invitation-token-{round_}-" + uuid.uuid4().hex
        now = datetime.now(UTC)
        issued = InvitationIssued(
            invitation_id=invitation_id,
            email=f"joiner-{round_}@example.com",
            expires_at=now + timedelta(days=7),
            token_hash=hash_link_token(token),
        )
        await joining.record_invitation(uow([]), new_event(issued, producer="invitations"))
        revoked = new_event(
            InvitationRevoked(
                invitation_id=invitation_id, token_hash=hash_link_token(token), revoked_at=now
            ),
            producer="invitations",
        )
        join_writes: list[GrantState] = []
        revoke_writes: list[GrantState] = []

        def join(
            token: str = token,
            round_: int = round_,
            written: list[GrantState] = join_writes,
            now: datetime = now,
        ) -> Awaitable[Any]:
            return joining.join(
                uow(written),
                token,
                JoinForm(name="Joiner", username=f"joiner{round_}", password="Analytical-1-x"),
                address=f"10.0.{round_ // 250}.{round_ % 250}",
                policy=JOIN_POLICY,
                hasher=FakeHasher(),
                throttling=ThrottlePolicy(),
                now=now,
            )

        def revoke(event: Any = revoked, written: list[GrantState] = revoke_writes) -> Any:
            return joining.record_revocation(uow(written), event)

        if round_ % 2:
            joined, revocation = await together(join, revoke)
        else:
            revocation, joined = await together(revoke, join)
        reraise([revocation])
        if isinstance(joined, JoinRefused):
            assert joined.problem is LinkProblem.REVOKED
        else:
            reraise([joined])
        async with sessions() as session:
            state = (
                await session.execute(
                    text("SELECT state FROM invitation_grants WHERE token_hash = :hash"),
                    {"hash": hash_link_token(token)},
                )
            ).scalar_one()
            accounts = (
                await session.execute(
                    text("SELECT count(*) FROM users WHERE username = :name"),
                    {"name": f"joiner{round_}"},
                )
            ).scalar_one()
        took_effect = {
            "join": GrantState.USED in join_writes,
            "revocation": GrantState.REVOKED in revoke_writes,
        }
        if sum(took_effect.values()) != 1 or accounts != (state == "used"):
            lost.append(f"round {round_}: {took_effect}, grant {state}, {accounts} account(s)")
    assert lost == []


# invitations: parallel invitations of one address


async def test_parallel_invitations_of_one_address_create_one_invitation(
    database: Database,
) -> None:
    invitations_orm.map_domain()
    sessions = await database("invitations", INVITATIONS_MIGRATIONS)
    policy = invitations.InvitePolicy(
        workspace_name="Acme Chat",
        public_url="https://chat.acme.test",
        default_ttl_hours=72,
        min_ttl_hours=1,
        max_ttl_hours=720,
        max_addresses_per_request=50,
        max_invitations_per_day=100_000,
    )
    minter = TokenMinter(b"s" * 32)

    def invite(address: str) -> Awaitable[list[invitations.InviteResult]]:
        return invitations.invite(
            SqlAlchemyInvitationsUnitOfWork(
                sessions, invitations_orm.messaging, producer="invitations"
            ),
            invitations.InviteCommand(emails=[address]),
            policy=policy,
            minter=minter,
            now=datetime.now(UTC),
        )

    parallel = 8
    for round_ in range(ROUNDS // 4):
        address = f"guest-{round_}@example.com"
        results = await together(*[lambda address=address: invite(address)] * parallel)
        reraise(results)
        outcomes = sorted(str(result[0].outcome) for result in results)
        assert outcomes == ["already_invited"] * (parallel - 1) + ["queued"], outcomes
        async with sessions() as session:
            stored = await session.scalar(
                select(func.count())
                .select_from(invitations_orm.invitations)
                .where(invitations_orm.invitations.c.email_key == address)
            )
        assert stored == 1


async def test_an_email_outcome_and_a_revocation_at_once_end_revoked_and_announced_once(
    database: Database,
) -> None:
    """The mailer's "sent" holds the invitation while an admin revokes it: the revocation
    waits, then sees the send, so the invitation ends revoked with one InvitationRevoked.
    Before both took the row's lock, a late "sent" overwrote the revocation, and the next
    DELETE revoked (and announced) the invitation a second time."""
    invitations_orm.map_domain()
    sessions = await database("invitations", INVITATIONS_MIGRATIONS)

    def uow() -> SqlAlchemyInvitationsUnitOfWork:
        return SqlAlchemyInvitationsUnitOfWork(
            sessions, invitations_orm.messaging, producer="invitations"
        )

    now = datetime.now(UTC)
    invitation = Invitation.issue(
        "ada@example.com", now=now, ttl_hours=72, minter=TokenMinter(b"s" * 32)
    )
    async with uow() as setup:
        setup.invitations.add(invitation)
        await setup.commit()

    async with uow() as outcome:
        held = await outcome.invitations.get(invitation.id, for_update=True)
        assert held is not None
        revoking = asyncio.create_task(invitations.revoke(uow(), invitation.id, now=now))
        # Time passes to show that the revocation does NOT finish while the lock is held.
        done, _ = await asyncio.wait({revoking}, timeout=0.5)
        assert not done
        held.record_sent(at=now, attempts=1)
        await outcome.commit()
    assert (await revoking).status is InvitationStatus.REVOKED

    async with uow() as check:
        stored = await check.invitations.get(invitation.id)
        assert stored is not None and stored.status is InvitationStatus.REVOKED
    outbox = invitations_orm.messaging.outbox
    async with sessions() as session:
        announced = await session.scalar(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.routing_key == "invitation.revoked.v1")
        )
    assert announced == 1
