"""The auth-listener's busy path against in-memory fakes: a login of an active or deactivated
account is answered by one read outside any unit of work, or by nothing at all for an id this
process knows has logged in; ids only, never emails or usernames; a first login still
activates, once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Self

from auth_listener.domain.model import AccountState, Identifier, Login
from auth_listener.service_layer import services
from auth_listener.service_layer.logged_in import LoggedInAccounts
from auth_listener.service_layer.ports import AccountReader
from auth_listener.service_layer.services import LoginOutcome
from auth_listener.service_layer.unit_of_work import AccountRepository
from onboarding_shared.contract import Envelope, UserCreated, UserUpdated, new_event
from tests.support.fake_auth_listener import FakeAuthListenerUnitOfWork

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class CountingUnitOfWork(FakeAuthListenerUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.entered = 0

    async def __aenter__(self) -> Self:
        self.entered += 1
        return await super().__aenter__()


class FakeReader(AccountReader):
    """Reads the fake repository's rows, as committed, counting each read."""

    def __init__(self, accounts: AccountRepository) -> None:
        self.accounts = accounts
        self.reads = 0

    async def state_of(self, identifiers: Sequence[Identifier]) -> AccountState | None:
        self.reads += 1
        account = await self.accounts.find(identifiers)
        return None if account is None else AccountState(account.id, account.status)


class Listener:
    """One process: its unit of work, its reader and its memory."""

    def __init__(self, memory_size: int = 100) -> None:
        self.uow = CountingUnitOfWork()
        self.reader = FakeReader(self.uow.accounts)
        self.logged_in = LoggedInAccounts(memory_size)

    async def login(self, event_id: uuid.UUID | None = None, **identity: object) -> LoginOutcome:
        return await services.record_login(
            self.uow,
            Login(logged_in_at=NOW, **identity),  # type: ignore[arg-type]
            event_id=event_id or uuid.uuid4(),
            now=NOW,
            reader=self.reader,
            logged_in=self.logged_in,
        )

    async def account(self, event: Envelope[UserCreated] | Envelope[UserUpdated]) -> None:
        await services.apply_account(self.uow, event, logged_in=self.logged_in)

    def activations(self) -> list[uuid.UUID]:
        return [event.data.user_id for event in self.uow.events("UserActivated")]


def created(
    user_id: uuid.UUID, email: str, username: str, status: str = "pending"
) -> Envelope[UserCreated]:
    return new_event(
        UserCreated(
            user_id=user_id,
            email=email,
            username=username,
            name="Someone",
            roles=["user"],
            status=status,
            created_at=NOW,
        ),
        producer="users",
    )


def updated(
    user_id: uuid.UUID, email: str, username: str, status: str, minutes: int
) -> Envelope[UserUpdated]:
    data = created(user_id, email, username, status).data.model_dump()
    return new_event(
        UserUpdated(**{**data, "updated_at": NOW + timedelta(minutes=minutes)}), producer="users"
    )


async def test_a_login_of_an_active_account_is_answered_without_a_unit_of_work() -> None:
    listener = Listener()
    ada = uuid.uuid4()
    await listener.account(created(ada, "ada@example.com", "ada", status="active"))
    entered = listener.uow.entered
    for _ in range(10):
        assert await listener.login(email="ADA@example.com") is LoginOutcome.ALREADY_ACTIVE
    assert listener.uow.entered == entered
    assert listener.reader.reads == 10
    assert listener.uow.accounts.locks_taken == 1  # apply_account's, none of the logins'


async def test_a_first_login_still_activates_once_under_the_locks() -> None:
    listener = Listener()
    ada = uuid.uuid4()
    await listener.account(created(ada, "ada@example.com", "ada"))
    assert await listener.login(email="ada@example.com") is LoginOutcome.ACTIVATED
    assert listener.uow.accounts.locks_taken == 2
    for _ in range(3):
        assert await listener.login(username="ada") is LoginOutcome.ALREADY_ACTIVE
    assert listener.activations() == [ada]
    assert listener.uow.accounts.locks_taken == 2


async def test_the_same_login_delivered_again_activates_nothing_more() -> None:
    """No inbox row: the account's state is the record that the login was applied."""
    for listener in (Listener(), Listener(memory_size=0)):
        ada = uuid.uuid4()
        await listener.account(created(ada, "ada@example.com", "ada"))
        event_id = uuid.uuid4()
        assert await listener.login(event_id, email="ada@example.com") is LoginOutcome.ACTIVATED
        assert (
            await listener.login(event_id, email="ada@example.com") is LoginOutcome.ALREADY_ACTIVE
        )
        assert listener.activations() == [ada]
    # And the same without a reader or memory (the unit of work alone).
    uow = FakeAuthListenerUnitOfWork()
    await services.apply_account(uow, created(ada, "ada@example.com", "ada"))
    login = Login(logged_in_at=NOW, email="ada@example.com")
    outcomes = [
        await services.record_login(uow, login, event_id=event_id, now=NOW) for _ in range(2)
    ]
    assert outcomes == [LoginOutcome.ACTIVATED, LoginOutcome.ALREADY_ACTIVE]
    assert len(uow.events("UserActivated")) == 1


async def test_an_id_that_has_logged_in_costs_no_read_at_all() -> None:
    listener = Listener()
    ada = uuid.uuid4()
    await listener.account(created(ada, "ada@example.com", "ada"))
    await listener.login(user_id=ada)
    reads, entered = listener.reader.reads, listener.uow.entered
    for _ in range(10):
        assert await listener.login(user_id=ada, email="ada@example.com") is (
            LoginOutcome.ALREADY_ACTIVE
        )
    assert (listener.reader.reads, listener.uow.entered) == (reads, entered)


async def test_an_active_account_found_by_email_is_remembered_by_its_id_only() -> None:
    listener = Listener()
    ada = uuid.uuid4()
    await listener.account(created(ada, "ada@example.com", "ada", status="active"))
    listener.logged_in.forget(ada)  # as in a process that has not seen it yet
    await listener.login(email="ada@example.com")
    assert ada in listener.logged_in
    reads = listener.reader.reads
    await listener.login(user_id=ada)
    await listener.login(email="ada@example.com")
    await listener.login(username="ada")
    assert listener.reader.reads == reads + 2  # the email and the username were read again


async def test_an_email_that_moved_to_a_pending_account_activates_that_account() -> None:
    """Why the memory is by id: an email can move from an active account to a pending one."""
    listener = Listener()
    ada, grace = uuid.uuid4(), uuid.uuid4()
    await listener.account(created(ada, "team@example.com", "ada"))
    assert await listener.login(email="team@example.com") is LoginOutcome.ACTIVATED
    await listener.account(updated(ada, "ada@example.com", "ada", "active", minutes=1))
    await listener.account(created(grace, "team@example.com", "grace"))
    assert await listener.login(email="team@example.com") is LoginOutcome.ACTIVATED
    assert listener.activations() == [ada, grace]


async def test_a_deactivation_applied_here_is_counted_as_deactivated_again() -> None:
    listener = Listener()
    ada = uuid.uuid4()
    await listener.account(created(ada, "ada@example.com", "ada"))
    await listener.login(user_id=ada)
    assert ada in listener.logged_in
    await listener.account(updated(ada, "ada@example.com", "ada", "deactivated", minutes=1))
    assert ada not in listener.logged_in
    assert await listener.login(user_id=ada) is LoginOutcome.DEACTIVATED
    await listener.account(updated(ada, "ada@example.com", "ada", "active", minutes=2))
    assert await listener.login(user_id=ada) is LoginOutcome.ALREADY_ACTIVE
    assert listener.activations() == [ada]


async def test_a_login_before_its_account_is_kept_and_applied_with_the_reader() -> None:
    listener = Listener()
    ada = uuid.uuid4()
    assert await listener.login(user_id=ada) is LoginOutcome.UNKNOWN_ACCOUNT
    assert ada not in listener.logged_in
    await listener.account(created(ada, "ada@example.com", "ada"))
    assert listener.activations() == [ada]
    assert ada in listener.logged_in  # activated by this process
    assert listener.uow.pending_logins.rows == {}


def test_the_memory_keeps_recent_ids_and_never_more_than_its_size() -> None:
    memory = LoggedInAccounts(10)
    ids = [uuid.uuid4() for _ in range(100)]
    kept = ids[0]
    for user_id in ids:
        memory.remember(user_id)
        assert kept in memory  # in use: kept
        assert len(memory) <= 10
    assert ids[-1] in memory and ids[-5] in memory  # the most recent half at least
    assert sum(user_id in memory for user_id in ids[1:90]) == 0
    memory.forget(kept)
    assert kept not in memory


def test_a_memory_of_size_zero_remembers_nothing() -> None:
    memory = LoggedInAccounts(0)
    ada = uuid.uuid4()
    memory.remember(ada)
    assert ada not in memory and len(memory) == 0
