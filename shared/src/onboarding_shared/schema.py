"""The database schema against this release's migrations: apply them, and tell whether a
database is ready to be served by this code.

A service serves only a schema at its migrations' head, or one a newer release has already
migrated further (migrations add before they remove, so the previous release keeps working
during a rolling update). A schema behind the head, or none, is not served: the process waits
for the migration and gives up with a clear message."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

log = logging.getLogger(__name__)


def alembic_config(database_url: str, migrations: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def migrate(database_url: str, migrations: Path) -> None:
    """Bring the schema to the head. Safe to run from several processes at once: on PostgreSQL
    the migration environment takes an advisory lock (see onboarding_shared.db)."""
    command.upgrade(alembic_config(database_url, migrations), "head")


@dataclass(frozen=True)
class SchemaState:
    current: frozenset[str]
    head: frozenset[str]
    known: frozenset[str]

    @property
    def servable(self) -> bool:
        if self.current == self.head:
            return True
        # Revisions this release does not know were applied by a newer one.
        return bool(self.current) and not self.current <= self.known

    def describe(self) -> str:
        current = ", ".join(sorted(self.current)) or "no migration applied"
        return f"schema at {current}; this release needs {', '.join(sorted(self.head))}"


async def read_schema_state(database_url: str, migrations: Path) -> SchemaState:
    script = ScriptDirectory.from_config(alembic_config(database_url, migrations))
    engine = create_async_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            current = await connection.run_sync(_current_heads)
    finally:
        await engine.dispose()
    return SchemaState(
        current=frozenset(current),
        head=frozenset(script.get_heads()),
        known=frozenset(revision.revision for revision in script.walk_revisions()),
    )


def _current_heads(connection: Connection) -> tuple[str, ...]:
    return MigrationContext.configure(connection).get_current_heads()


async def wait_for_schema(
    database_url: str, migrations: Path, *, timeout: float, poll_seconds: float = 2.0
) -> SchemaState:
    """Return once the schema can be served; raise SystemExit after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    reported = ""
    while True:
        try:
            state = await read_schema_state(database_url, migrations)
            if state.servable:
                return state
            problem = state.describe()
        except Exception as error:  # drivers' connection errors share no base class
            problem = f"database unavailable: {type(error).__name__}"
        if time.monotonic() >= deadline:
            raise SystemExit(
                f"not serving: {problem} (waited {timeout:.0f} s; run the service's "
                "`migrate` command, or raise SCHEMA_WAIT_SECONDS)"
            )
        if problem != reported:
            log.warning("waiting for the database schema", extra={"problem": problem})
            reported = problem
        await asyncio.sleep(poll_seconds)
