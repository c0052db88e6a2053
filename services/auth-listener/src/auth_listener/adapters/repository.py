from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from auth_listener.adapters.orm import known_accounts, pending_logins
from auth_listener.domain.model import (
    Identifier,
    IdentifierKind,
    KnownAccount,
    PendingLogin,
    identifier_key,
)
from auth_listener.service_layer.unit_of_work import AccountRepository, PendingLoginRepository

_COLUMN_OF = {
    IdentifierKind.ID: known_accounts.c.id,
    IdentifierKind.EMAIL: known_accounts.c.email_key,
    IdentifierKind.USERNAME: known_accounts.c.username_key,
}


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


class SqlAlchemyAccountRepository(AccountRepository):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, account: KnownAccount) -> None:
        self._session.add(account)

    async def get(self, user_id: uuid.UUID, *, for_update: bool = False) -> KnownAccount | None:
        query = select(KnownAccount).where(known_accounts.c.id == user_id)
        if for_update:
            query = query.with_for_update().execution_options(populate_existing=True)
        return (await self._session.scalars(query)).first()

    async def find(self, identifiers: Sequence[Identifier]) -> KnownAccount | None:
        if not identifiers:
            return None
        conditions = [_COLUMN_OF[kind] == _typed(kind, value) for kind, value in identifiers]
        query = (
            select(KnownAccount).where(or_(*conditions)).execution_options(populate_existing=True)
        )
        found = (await self._session.scalars(query)).all()
        for kind, value in identifiers:  # the most specific identifier wins
            for account in found:
                if _matches(account, kind, value):
                    return account
        return None

    async def serialize_on(self, identifiers: Sequence[Identifier]) -> None:
        if _dialect(self._session) != "postgresql":
            # Nothing to take on SQLite: every transaction there begins IMMEDIATE (see
            # onboarding_shared.db.create_engine), so it has held the whole database's write
            # lock since its first statement, reads included, and units of work run one after
            # the other. (Without that, SQLite's single writer would not be enough: a deferred
            # transaction reads before it takes the lock, and both sides could miss each other.)
            return
        for key in sorted({identifier_key(identifier) for identifier in identifiers}):
            await self._session.execute(
                select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0)))
            )


def _typed(kind: IdentifierKind, value: str) -> Any:
    return uuid.UUID(value) if kind is IdentifierKind.ID else value


def _matches(account: KnownAccount, kind: IdentifierKind, value: str) -> bool:
    if kind is IdentifierKind.ID:
        return str(account.id) == value
    if kind is IdentifierKind.EMAIL:
        return account.email_key == value
    return account.username_key == value


class SqlAlchemyPendingLoginRepository(PendingLoginRepository):
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def remember(self, logins: Sequence[PendingLogin]) -> None:
        if not logins:
            return
        insert: Any = (
            postgresql_insert if _dialect(self._session) == "postgresql" else sqlite_insert
        )
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
