"""Throw-away PostgreSQL databases: each test run creates its own and drops them at the end."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from onboarding_shared.schema import migrate


class DatabaseFactory:
    def __init__(self, admin_url: str) -> None:
        self._admin = make_url(admin_url)
        self._created: list[str] = []

    async def create(self, label: str) -> str:
        name = f"t_{label}_{uuid.uuid4().hex[:10]}"
        connection = await asyncpg.connect(self._dsn(self._admin.database))
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        self._created.append(name)
        return self._admin.set(database=name).render_as_string(hide_password=False)

    async def create_migrated(self, label: str, migrations: Path) -> str:
        url = await self.create(label)
        await asyncio.to_thread(migrate, url, migrations)
        return url

    async def drop_all(self) -> None:
        connection = await asyncpg.connect(self._dsn(self._admin.database))
        try:
            for name in self._created:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    def _dsn(self, database: str | None) -> str:
        return self._admin.set(drivername="postgresql", database=database).render_as_string(
            hide_password=False
        )
