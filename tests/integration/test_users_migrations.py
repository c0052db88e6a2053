"""The users service's migrations 0004 and 0005, on PostgreSQL and SQLite: grants learnt before
invitations carried roles give the user role, the only one joining gave then; undone, the grants
stay. The invite links' grants come and go."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import insert, inspect, select

import users.bootstrap
from onboarding_shared.db import create_engine
from tests.support.databases import DatabaseFactory
from tests.support.migrations import BACKENDS, alembic_config, empty_database
from users.adapters.orm import invitation_grants, invite_link_grants

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("backend", BACKENDS)
async def test_grants_learnt_before_roles_existed_give_the_user_role(
    databases: DatabaseFactory, tmp_path: Path, backend: str
) -> None:
    url = await empty_database(databases, tmp_path, backend, "users")
    config = alembic_config(users.bootstrap.MIGRATIONS, url)
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


@pytest.mark.parametrize("backend", BACKENDS)
async def test_invite_link_grants_migrate_up_and_down(
    databases: DatabaseFactory, tmp_path: Path, backend: str
) -> None:
    """0005 adds the invite links' grants: several links known only by their revocation (no
    token hash yet) live side by side; undone, the table goes and the accounts stay."""
    url = await empty_database(databases, tmp_path, backend, "users")
    config = alembic_config(users.bootstrap.MIGRATIONS, url)
    await asyncio.to_thread(command.upgrade, config, "0004")
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert "invite_link_grants" not in tables
        await asyncio.to_thread(command.upgrade, config, "head")
        now = datetime.now(UTC)
        rows = [
            {"link_id": uuid.uuid4(), "state": "revoked", "token_hash": None},
            {"link_id": uuid.uuid4(), "state": "revoked", "token_hash": None},
            {"link_id": uuid.uuid4(), "state": "open", "token_hash": "22" * 32},
        ]
        async with engine.begin() as connection:
            await connection.execute(
                insert(invite_link_grants),
                [
                    {
                        **row,
                        "issued_at": now,
                        "expires_at": None,
                        "max_uses": 10,
                        "uses": 0,
                        "allowed_domain": "example.com",
                        "roles": ("user",),
                    }
                    for row in rows
                ],
            )
        async with engine.connect() as connection:
            held = (
                await connection.execute(
                    select(invite_link_grants.c.link_id, invite_link_grants.c.roles)
                )
            ).all()
        assert {row.link_id for row in held} == {row["link_id"] for row in rows}
        assert {row.roles for row in held} == {("user",)}

        await asyncio.to_thread(command.downgrade, config, "0004")
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert "invite_link_grants" not in tables and "users" in tables
        await asyncio.to_thread(command.upgrade, config, "head")
    finally:
        await engine.dispose()
