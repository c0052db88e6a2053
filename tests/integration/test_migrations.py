"""Each service's migrations build exactly the schema its models describe, on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

import auth_listener.bootstrap
import invitations.bootstrap
import mailer.bootstrap
import users.bootstrap
from tests.support.databases import DatabaseFactory

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
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("sqlalchemy.url", url)
    await asyncio.to_thread(command.check, config)
    await asyncio.to_thread(command.downgrade, config, "base")
    await asyncio.to_thread(command.upgrade, config, "head")
