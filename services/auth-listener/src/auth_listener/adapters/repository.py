from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, and_, bindparam, delete, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from auth_listener.adapters.orm import known_accounts, pending_logins
from auth_listener.domain.model import (
    AccountState,
    AccountStatus,
    Identifier,
    IdentifierKind,
    KnownAccount,
    PendingLogin,
    identifier_key,
)
from auth_listener.service_layer.unit_of_work import AccountRepository, PendingLoginRepository
from onboarding_shared.db import insert_for
from onboarding_shared.orm import AddingRepository, SessionRepository, locked

_COLUMN_OF = {
    IdentifierKind.ID: known_accounts.c.id,
    IdentifierKind.EMAIL: known_accounts.c.email_key,
    IdentifierKind.USERNAME: known_accounts.c.username_key,
}


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


class SqlAlchemyAccountRepository(AddingRepository[KnownAccount], AccountRepository):
    async def get(self, user_id: uuid.UUID, *, for_update: bool = False) -> KnownAccount | None:
        query = select(KnownAccount).where(known_accounts.c.id == user_id)
        return (await self._session.scalars(locked(query) if for_update else query)).first()

    async def find(self, identifiers: Sequence[Identifier]) -> KnownAccount | None:
        return await self._find(identifiers, for_update=False)

    async def find_for_update(self, identifiers: Sequence[Identifier]) -> KnownAccount | None:
        return await self._find(identifiers, for_update=True)

    async def _find(
        self, identifiers: Sequence[Identifier], *, for_update: bool
    ) -> KnownAccount | None:
        if not identifiers:
            return None
        query = select(KnownAccount).where(_naming(identifiers))
        if for_update:
            # One statement for what took two (find, then get the row for update). Every row
            # an identifier names is locked, in id order: two logins lock the same rows in the
            # same order, and account changes lock one row, after their identifiers' locks.
            # (SQLite has no FOR UPDATE: its transactions hold the database's write lock.)
            query = query.order_by(known_accounts.c.id).with_for_update()
        found = (await self._session.scalars(query.execution_options(populate_existing=True))).all()
        return _most_specific(identifiers, found)

    async def serialize_on(self, identifiers: Sequence[Identifier]) -> None:
        if _dialect(self._session) != "postgresql":
            # Nothing to take on SQLite: every transaction there begins IMMEDIATE (see
            # onboarding_shared.db.create_engine), so it has held the whole database's write
            # lock since its first statement, reads included, and units of work run one after
            # the other. (Without that, SQLite's single writer would not be enough: a deferred
            # transaction reads before it takes the lock, and both sides could miss each other.)
            return
        keys = sorted({identifier_key(identifier) for identifier in identifiers})
        # One round trip for all of them: PostgreSQL evaluates a select list in order, so the
        # locks are still taken in the keys' order, the same in every transaction.
        await self._session.execute(
            select(*(func.pg_advisory_xact_lock(func.hashtextextended(key, 0)) for key in keys))
        )


def _typed(kind: IdentifierKind, value: str) -> Any:
    return uuid.UUID(value) if kind is IdentifierKind.ID else value


def _naming(identifiers: Sequence[Identifier]) -> ColumnElement[bool]:
    return or_(*(_COLUMN_OF[kind] == _typed(kind, value) for kind, value in identifiers))


class _Named(Protocol):
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def email_key(self) -> str: ...
    @property
    def username_key(self) -> str: ...


_NamedT = TypeVar("_NamedT", bound=_Named)


def _most_specific(identifiers: Sequence[Identifier], found: Sequence[_NamedT]) -> _NamedT | None:
    for kind, value in identifiers:  # the most specific identifier wins
        for account in found:
            if _matches(account, kind, value):
                return account
    return None


def _matches(account: _Named, kind: IdentifierKind, value: str) -> bool:
    if kind is IdentifierKind.ID:
        return str(account.id) == value
    if kind is IdentifierKind.EMAIL:
        return account.email_key == value
    return account.username_key == value


class SqlAlchemyAccountReader:
    """The service layer's AccountReader: the busy path's reads, on a connection in autocommit
    (adapters.reading: no BEGIN, no ROLLBACK, no lock), of four columns (Core, no ORM).

    Reads asked for while one is in flight go together in the next statement: under load (up
    to PREFETCH logins in hand at once) one round trip serves many logins, and alone a login
    waits for nothing but its own read. Every login still gets what a read of its own would
    give: the statement fetches every row any of its identifiers names, committed when it
    started, which is after the login asked; the most specific identifier then picks, as in
    find()."""

    _BATCH = select(
        known_accounts.c.id,
        known_accounts.c.email_key,
        known_accounts.c.username_key,
        known_accounts.c.status,
    ).where(
        or_(
            known_accounts.c.id.in_(bindparam("ids", expanding=True)),
            known_accounts.c.email_key.in_(bindparam("emails", expanding=True)),
            known_accounts.c.username_key.in_(bindparam("usernames", expanding=True)),
        )
    )
    MAX_BATCH = 64  # logins per statement

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._waiting: list[tuple[Sequence[Identifier], asyncio.Future[AccountState | None]]] = []
        self._reading: asyncio.Task[None] | None = None

    async def state_of(self, identifiers: Sequence[Identifier]) -> AccountState | None:
        if not identifiers:
            return None
        answer: asyncio.Future[AccountState | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((identifiers, answer))
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read_while_asked())
        return await answer

    async def _read_while_asked(self) -> None:
        while self._waiting:
            batch = self._waiting[: self.MAX_BATCH]
            del self._waiting[: self.MAX_BATCH]
            try:
                found = await self._read([identifier for ids, _ in batch for identifier in ids])
            except asyncio.CancelledError:
                for _, answer in batch:
                    answer.cancel()
                raise
            except Exception as error:  # each login fails as its own read would have
                for _, answer in batch:
                    if not answer.done():
                        answer.set_exception(error)
                continue
            for identifiers, answer in batch:
                if not answer.done():  # a login given up meanwhile (shutdown)
                    row = _most_specific(identifiers, found)
                    state = None if row is None else AccountState(row.id, AccountStatus(row.status))
                    answer.set_result(state)

    async def _read(self, identifiers: Sequence[Identifier]) -> Sequence[Any]:
        values: dict[IdentifierKind, set[Any]] = {kind: set() for kind in IdentifierKind}
        for kind, value in identifiers:
            values[kind].add(_typed(kind, value))
        parameters = {
            "ids": sorted(values[IdentifierKind.ID]),
            "emails": sorted(values[IdentifierKind.EMAIL]),
            "usernames": sorted(values[IdentifierKind.USERNAME]),
        }
        async with self._engine.connect() as connection:
            return (await connection.execute(self._BATCH, parameters)).all()


class SqlAlchemyPendingLoginRepository(SessionRepository, PendingLoginRepository):
    async def remember(self, logins: Sequence[PendingLogin]) -> None:
        if not logins:
            return
        insert = insert_for(self._session)
        rows = [
            {
                "kind": login.kind,
                "value": login.value,
                "logged_in_at": login.logged_in_at,
                "received_at": login.received_at,
            }
            for login in logins
        ]
        await self._session.execute(
            insert(pending_logins)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["kind", "value"])
        )

    async def take(self, identifiers: Sequence[Identifier]) -> list[PendingLogin]:
        keys = [(kind, value) for kind, value in identifiers]
        where = tuple_(pending_logins.c.kind, pending_logins.c.value).in_(keys)
        found = list((await self._session.scalars(select(PendingLogin).where(where))).all())
        for login in found:
            await self._session.delete(login)
        return found

    async def forget_received_before(self, moment: datetime) -> int:
        result = await self._session.execute(
            delete(pending_logins).where(and_(pending_logins.c.received_at < moment))
        )
        return int(getattr(result, "rowcount", 0) or 0)
