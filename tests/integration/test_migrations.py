"""Each service's migrations build exactly the schema its models describe, on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import insert, inspect, select, text

import auth_listener.bootstrap
import invitations.bootstrap
import mailer.bootstrap
import users.bootstrap
from invitations.adapters import orm
from onboarding_shared.db import create_engine
from tests.support.databases import DatabaseFactory
from tests.support.migrations import BACKENDS, alembic_config, empty_database

pytestmark = pytest.mark.integration

SERVICES = {
    "users": users.bootstrap.MIGRATIONS,
    "invitations": invitations.bootstrap.MIGRATIONS,
    "mailer": mailer.bootstrap.MIGRATIONS,
    "auth_listener": auth_listener.bootstrap.MIGRATIONS,
}


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_migrations_match_the_models_and_downgrade_cleanly(
    databases: DatabaseFactory, service: str
) -> None:
    migrations: Path = SERVICES[service]
    url = await databases.create_migrated(service, migrations)
    config = alembic_config(migrations, url)
    await asyncio.to_thread(command.check, config)
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "head")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_invitation_deferrals_migrate_up_and_down_keeping_every_invitation(
    databases: DatabaseFactory, tmp_path: Path, backend: str
) -> None:
    """0002 adds the retry columns; undone, a retrying invitation waits as pending, a status
    the older code knows."""
    url = await empty_database(databases, tmp_path, backend, "invitations")
    config = alembic_config(invitations.bootstrap.MIGRATIONS, url)
    await asyncio.to_thread(command.upgrade, config, "head")
    now = datetime.now(UTC)
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(orm.invitations).values(
                    id=uuid.uuid4(),
                    email="ada@example.com",
                    email_key="ada@example.com",
                    token_salt="00" * 32,
                    token_hash="11" * 32,
                    status="retrying",
                    created_at=now,
                    expires_at=now + timedelta(days=7),
                    ttl_hours=168,
                    attempts=2,
                    sends=1,
                    last_error="421 4.7.0 try again later",
                    next_attempt_at=now + timedelta(minutes=5),
                    deferred_at=now,
                )
            )
        await asyncio.to_thread(command.downgrade, config, "0001")
        async with engine.connect() as connection:
            rows = (
                await connection.execute(text("SELECT status, last_error FROM invitations"))
            ).all()
            columns = await connection.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("invitations")}
            )
        assert [tuple(row) for row in rows] == [("pending", "421 4.7.0 try again later")]
        assert not {"next_attempt_at", "deferred_at"} & columns
        await asyncio.to_thread(command.upgrade, config, "head")
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_invitations_made_before_roles_existed_give_the_user_role(
    databases: DatabaseFactory, tmp_path: Path, backend: str
) -> None:
    """0003 adds the roles an invitation gives; the ones already out give what joining gave."""
    url = await empty_database(databases, tmp_path, backend, "invitations")
    config = alembic_config(invitations.bootstrap.MIGRATIONS, url)
    await asyncio.to_thread(command.upgrade, config, "0002")
    now = datetime.now(UTC)
    invitation_id = uuid.uuid4()
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            # Only the columns 0002 knows: no roles.
            await connection.execute(
                insert(orm.invitations).values(
                    id=invitation_id,
                    email="ada@example.com",
                    email_key="ada@example.com",
                    token_salt="00" * 32,
                    token_hash="11" * 32,
                    status="sent",
                    created_at=now,
                    expires_at=now + timedelta(days=7),
                    ttl_hours=168,
                    attempts=1,
                    sends=1,
                )
            )
        await asyncio.to_thread(command.upgrade, config, "head")
        async with engine.connect() as connection:
            roles = (await connection.execute(select(orm.invitations.c.roles))).scalar_one()
        assert roles == ["user"]
    finally:
        await engine.dispose()
