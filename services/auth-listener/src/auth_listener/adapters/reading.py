"""The engine the busy path of a login reads through: no transaction of ours, no lock.

Every unit of work on SQLite begins IMMEDIATE (onboarding_shared.db): it holds the database's
one write lock from its first statement, reads included, so that what it read is still true
when it writes. The busy path writes nothing, ever: it reads an account's committed status and,
when that is active or deactivated, stops. Taking the write lock for that read only made the
10,000th login of an active account queue behind every activation. So it reads here instead:

- SQLite: a small engine of its own on the same file (the service's engine emits BEGIN
  IMMEDIATE at every begin, whatever the isolation level). Its connections are in autocommit
  and `query_only`: each SELECT is its own read transaction, on the last committed state of
  the WAL (the file is in WAL mode: onboarding_shared.db), without waiting for a writer.
- PostgreSQL: the service's engine and pool, in autocommit: one round trip, no BEGIN and no
  ROLLBACK. Under READ COMMITTED a statement of its own sees the same committed rows as the
  first statement of a transaction would.

Why that is safe: the reader sees only committed rows, and the service layer trusts it only to
say "active" or "deactivated", the outcomes that write nothing. A login found pending, or whose
account is unknown, is decided again in a unit of work, under the identifier and row locks, as
before. An account stops being active or deactivated only by a newer snapshot: active never
goes back to pending (its first login is kept), and a deactivated account that never logged in
goes back to pending only when it is reactivated; a login read just before that reactivation
commits is ordered before it, exactly as the unlocked first read of a PostgreSQL unit of work
ordered it. The deferred-transaction problem that db.py avoids (a read, then a write that cannot
take the lock) cannot arise here: these connections never write (`query_only` makes sure).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from onboarding_shared.db import is_in_memory

# The reader sends one statement at a time (SqlAlchemyAccountReader); one spare.
SQLITE_READERS = 2


def reading_engine(engine: AsyncEngine) -> AsyncEngine:
    """An engine for reads outside any transaction, beside the service's ``engine``; dispose
    of it at shutdown (a no-op for the PostgreSQL one, which shares the service's pool)."""
    if engine.dialect.name != "sqlite":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    if is_in_memory(engine.url):
        return engine  # lives in the service's own connection: read there, under its lock
    readers = create_async_engine(
        engine.url,
        connect_args={"timeout": 30},
        isolation_level="AUTOCOMMIT",
        skip_autocommit_rollback=True,  # nothing to roll back: no ROLLBACK per read
        pool_reset_on_return=None,
        pool_size=SQLITE_READERS,
        max_overflow=0,
    )
    event.listen(readers.sync_engine, "connect", _read_only)
    return readers


def _read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    # A reader waits only while the WAL is being checkpointed or recovered; rarely, briefly.
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
