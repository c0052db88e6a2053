"""The schema gate against the real PostgreSQL: replicas migrating at once take turns, a
service serves only a schema at its head (or one a newer release migrated further), and
`serve` refuses, with a clear message, a schema behind it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from invitations.bootstrap import MIGRATIONS
from onboarding_shared.db import MIGRATION_LOCK_KEY
from onboarding_shared.schema import migrate, read_schema_state, wait_for_schema
from tests.support.auth import verifier_settings
from tests.support.broker import eventually
from tests.support.databases import DatabaseFactory
from users.bootstrap import MIGRATIONS as USERS_MIGRATIONS

pytestmark = pytest.mark.integration


def service_environment(database_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "INVITATIONS_DATABASE_URL": database_url,
        "INVITATION_TOKEN_SECRET": "s" * 40,
        "AUTH_PUBLIC_KEY": str(verifier_settings()["auth_public_key"]),
    }


def run_invitations(command: str, *, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "onboarding-invitations"), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def execute(database_url: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn(database_url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def test_replicas_migrating_at_once_take_turns(databases: DatabaseFactory) -> None:
    url = await databases.create("schema")
    env = {**service_environment(url), "LOG_FORMAT": "console"}
    holder = await asyncpg.connect(dsn(url))
    try:
        # Hold the migrations' lock, so that every replica is provably waiting at once.
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        replicas = [
            asyncio.create_task(asyncio.to_thread(run_invitations, "migrate", env=env))
            for _ in range(4)
        ]

        async def all_waiting() -> bool:
            waiting = await holder.fetchval(
                "SELECT count(*) FROM pg_locks JOIN pg_database d ON d.oid = database "
                "WHERE locktype = 'advisory' AND NOT granted AND d.datname = current_database()"
            )
            return bool(waiting == len(replicas))

        assert await eventually(all_waiting, timeout=60)
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        migrations = await asyncio.gather(*replicas)
    finally:
        await holder.close()

    assert [m.returncode for m in migrations] == [0] * 4, [m.stderr for m in migrations]
    assert (await read_schema_state(url, MIGRATIONS)).servable


async def test_only_a_schema_at_the_head_or_beyond_is_served(databases: DatabaseFactory) -> None:
    # The users service: it has several migrations, so a schema can be behind without being empty.
    url = await databases.create("schema")
    empty = await read_schema_state(url, USERS_MIGRATIONS)
    assert not empty.servable
    assert empty.describe().startswith("schema at no migration applied; this release needs ")

    await asyncio.to_thread(migrate, url, USERS_MIGRATIONS)
    current = await read_schema_state(url, USERS_MIGRATIONS)
    assert current.servable and current.current == current.head

    older = sorted(current.known - current.head)
    assert older
    await execute(url, f"UPDATE alembic_version SET version_num = '{older[0]}'")
    behind = await read_schema_state(url, USERS_MIGRATIONS)
    assert not behind.servable
    assert behind.describe().startswith(f"schema at {older[0]}; this release needs ")

    # A newer release's migration, unknown here: this release keeps serving during a rollout.
    await execute(url, "UPDATE alembic_version SET version_num = 'from_a_newer_release'")
    assert (await read_schema_state(url, USERS_MIGRATIONS)).servable


async def test_waiting_for_a_schema_that_never_comes_gives_up_with_the_reason(
    databases: DatabaseFactory,
) -> None:
    url = await databases.create("schema")
    with pytest.raises(SystemExit) as stopped:
        await wait_for_schema(url, MIGRATIONS, timeout=0.5, poll_seconds=0.1)
    assert "not serving: schema at no migration applied" in str(stopped.value)
    assert "`migrate`" in str(stopped.value)


async def test_serve_refuses_a_schema_behind_its_head(databases: DatabaseFactory) -> None:
    url = await databases.create("schema")
    env = {**service_environment(url), "SCHEMA_WAIT_SECONDS": "1", "LOG_FORMAT": "console"}

    serve = await asyncio.to_thread(run_invitations, "serve", env=env)

    assert serve.returncode == 1
    assert "not serving: schema at no migration applied" in serve.stderr
    # Nothing was served and nothing was migrated behind the operator's back.
    assert not (await read_schema_state(url, MIGRATIONS)).servable
