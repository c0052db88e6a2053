"""The users service's migration 0004, on PostgreSQL and SQLite: grants learnt before invitations
carried roles give the user role, the only one joining gave then; undone, the grants stay."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import insert, inspect, select

import users.bootstrap
from onboarding_shared.db import create_engine
from tests.support.databases import DatabaseFactory
from users.adapters.orm import invitation_grants

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_grants_learnt_before_roles_existed_give_the_user_role(
    databases: DatabaseFactory, tmp_path: Path, backend: str
) -> None:
    url = (
        await databases.create("users")
        if backend == "postgresql"
        else f"sqlite+aiosqlite:///{tmp_path / 'users.db'}"
    )
    config = Config()
    config.set_main_option("script_location", str(users.bootstrap.MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    await asyncio.to_thread(command.upgrade, config, "0003")
    invitation_id = uuid.uuid4()
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            # Only the columns 0003 knows: no roles.
            await connection.execute(
                insert(invitation_grants).values(
                    invitation_id=invitation_id,
                    token_hash="11" * 32,
                    state="open",
                    email="ada@example.com",
                    expires_at=datetime.now(UTC) + timedelta(days=7),
                )
            )
        await asyncio.to_thread(command.upgrade, config, "head")
        async with engine.connect() as connection:
            roles = (await connection.execute(select(invitation_grants.c.roles))).scalar_one()
        assert roles == ("user",)

        await asyncio.to_thread(command.downgrade, config, "0003")
        async with engine.connect() as connection:
            columns = await connection.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("invitation_grants")}
            )
            kept = (await connection.execute(select(invitation_grants.c.invitation_id))).all()
        assert "roles" not in columns and [row[0] for row in kept] == [invitation_id]
        await asyncio.to_thread(command.upgrade, config, "head")
    finally:
        await engine.dispose()
