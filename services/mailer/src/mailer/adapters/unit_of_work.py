from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from mailer.adapters.locks import KeyedLocks
from mailer.adapters.repository import SqlAlchemyEmailRepository
from mailer.service_layer.unit_of_work import MailerUnitOfWork
from onboarding_shared.unit_of_work import MessagingTables, SqlAlchemyUnitOfWork

# pg_advisory_lock(int, int)'s first key: the mailer's emails. The two-key form has a keyspace
# of its own, apart from the one-key form the migrations lock with.
EMAIL_LOCK_CLASS = 0x6D61696C  # "mail"


class SqlAlchemyMailerUnitOfWork(SqlAlchemyUnitOfWork, MailerUnitOfWork):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tables: MessagingTables,
        *args: Any,
        email_locks: KeyedLocks | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(sessions, tables, *args, **kwargs)
        self._all_sessions = sessions
        # Shared by every unit of work of the process (bootstrap makes one).
        self._email_locks = email_locks if email_locks is not None else KeyedLocks()

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self.emails = SqlAlchemyEmailRepository(self.session)
        return self

    @asynccontextmanager
    async def exclusively(self, source_event_id: uuid.UUID) -> AsyncIterator[None]:
        engine = self._all_sessions.kw["bind"]
        if engine.dialect.name == "postgresql":
            async with (
                engine.connect() as connection,
                _advisory_lock(connection, source_event_id),
            ):
                # This unit's transactions run on the locking connection: a delivery needs one
                # connection, not two, so a full pool cannot leave a lock holder waiting for a
                # connection that lock waiters hold.
                self._sessions = async_sessionmaker(bind=connection, expire_on_commit=False)
                try:
                    yield
                finally:
                    self._sessions = self._all_sessions
        else:
            # SQLite: one process owns the file, so a lock in this process is enough, and the
            # database's one write lock is not held while the mail goes out.
            async with self._email_locks.hold(source_event_id):
                yield


@asynccontextmanager
async def _advisory_lock(connection: AsyncConnection, key: uuid.UUID) -> AsyncIterator[None]:
    """A session-level lock: it outlives the transactions on this connection, and ends when
    released or when the connection does (the process died), so nothing waits on a corpse.
    Taken and released through the driver, each one statement outside any transaction: a
    round trip is the costliest part of a delivery here (measured: socket writes were a
    quarter of the mailer's time)."""
    object_key = int.from_bytes(key.bytes[:4], "big", signed=True)
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    # A connection that may hold the lock never goes back to the pool: the pool's reset (a
    # ROLLBACK) does not release a session-level lock, and the event would wait for ever. So
    # when taking or releasing it fails or is cancelled (the server may have granted it all
    # the same), the connection is closed instead, and the server releases what it held.
    try:
        await driver.execute("SELECT pg_advisory_lock($1, $2)", EMAIL_LOCK_CLASS, object_key)
    except BaseException:
        await connection.invalidate()
        raise
    try:
        yield
    finally:
        try:
            await driver.execute("SELECT pg_advisory_unlock($1, $2)", EMAIL_LOCK_CLASS, object_key)
        except BaseException:
            await connection.invalidate()
            raise
