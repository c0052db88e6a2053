"""Database plumbing shared by every service: engines, UTC timestamps, Alembic environment."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from alembic import context
from sqlalchemy import DateTime, Enum, MetaData, Table, event, pool, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, Connection, Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import registry
from sqlalchemy.types import TypeDecorator

SUPPORTED_SCHEMES = ("postgresql+asyncpg", "sqlite+aiosqlite")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def string_enum(enum: type[StrEnum], length: int = 20) -> Enum:
    """A column holding a StrEnum as its values (not its names), as a plain string: no
    database enum type or CHECK constraint, so a new member needs no migration."""
    return Enum(
        enum, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e]
    )


def map_once(mapper_registry: registry, *mappings: tuple[type[Any], Table]) -> None:
    """Map plain domain classes onto tables, once per process: bootstrap may run many times
    (tests build several apps), and SQLAlchemy refuses to map a class twice."""
    if not mapper_registry.mappers:
        for domain_class, table in mappings:
            mapper_registry.map_imperatively(domain_class, table)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp on every backend (SQLite returns naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


def validate_database_url(url: str) -> str:
    if not url.startswith(tuple(f"{scheme}://" for scheme in SUPPORTED_SCHEMES)):
        raise ValueError(
            f"must start with one of {', '.join(s + '://' for s in SUPPORTED_SCHEMES)}"
        )
    return url


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    if url.startswith("sqlite"):
        # One connection: every transaction takes the database's one write lock anyway
        # (_begin_immediate), and waiting for the pool is a fair asyncio queue, where waiting
        # on the lock is SQLite's busy handler, sleeping in a thread in steps of up to 100 ms
        # (measured: 16 concurrent consumers spent more time there than working).
        one_connection: dict[str, Any] = (
            {} if is_in_memory(url) else {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60}
        )
        engine = create_async_engine(url, connect_args={"timeout": 30}, **one_connection)
        event.listen(engine.sync_engine, "connect", _tune_sqlite)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        return engine
    # No pre-ping: on asyncpg it costs a transaction per checkout (measured: the largest single
    # cost in `make bench`). A connection broken by a database restart fails one operation,
    # which invalidates the pool; consumers retry and HTTP clients get a 5xx once.
    # No overflow either: SQLAlchemy closes an overflow connection as soon as it is returned,
    # so a steady load above pool_size opened and closed connections all the time (measured:
    # connecting, SSL negotiation included, was 5% of the users service's CPU during P4).
    # The pool keeps up to 2 x DB_POOL_SIZE instead, opened as needed, as before.
    return create_async_engine(url, pool_size=2 * pool_size, max_overflow=0, pool_recycle=1800)


def is_in_memory(url: str | URL) -> bool:
    """An in-memory database lives in its one connection: SQLAlchemy pools it apart."""
    database = make_url(url).database
    return database in (None, "", ":memory:") or "mode=memory" in str(url)


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is off: it would BEGIN (deferred) only before an
    # INSERT/UPDATE/DELETE and run every earlier SELECT outside any transaction, so a unit of
    # work could decide on what it read and then write after another one had changed it.
    # SQLAlchemy's "begin" event emits our BEGIN instead (_begin_immediate); the driver still
    # emits COMMIT and ROLLBACK. (The recipe of SQLAlchemy's pysqlite/aiosqlite docs.)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL: cheaper commits, and readers outside these engines (the schema check at start-up,
    # the sqlite3 shell) never wait for a writer.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # A transaction that finds the write lock taken waits for it (30 s) instead of failing.
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _begin_immediate(connection: Connection) -> None:
    """Every transaction on SQLite takes the database's write lock when it begins, and holds it
    to its end: transactions then run one after the other, reads included, so what a unit of
    work read is still true when it writes, as with PostgreSQL's row and advisory locks.

    Read-only transactions (lists, the busy path of a consumer) take the lock too, on purpose:
    the service layer decides after reading whether it writes, and a deferred transaction that
    read an older snapshot cannot take the lock afterwards (SQLITE_BUSY at once, busy_timeout
    does not apply), so it would fail where it should have waited. Readers therefore wait for
    the writer in hand, for as long as its (short) transaction lasts; SQLite serves one process
    and light traffic here, PostgreSQL the rest."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# pg_advisory_xact_lock's key for migrations: any constant, the same in every release.
MIGRATION_LOCK_KEY = 0x6F6E626F61726400  # "onboard\0"


def run_alembic_environment(target_metadata: MetaData) -> None:
    """The body of every service's migrations/env.py: online migrations, async engine."""
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("sqlalchemy.url is not set; run migrations through the service's CLI")
    asyncio.run(_migrate(url, target_metadata))


async def _migrate(url: str, target_metadata: MetaData) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_configure_and_run(target_metadata, url))
    await engine.dispose()


def _configure_and_run(target_metadata: MetaData, url: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=url.startswith("sqlite"),
            compare_type=True,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Replicas starting together migrate one at a time; the others then find the
                # head already applied. Released when the transaction ends.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            context.run_migrations()

    return run


def insert_for(session: AsyncSession) -> Any:
    """The dialect's own insert, for ON CONFLICT (both dialects have it, SQLAlchemy's generic
    insert does not)."""
    dialect = session.get_bind().dialect.name
    return postgresql_insert if dialect == "postgresql" else sqlite_insert
