"""Running a service's Alembic migrations by hand in a test, on either kind of database."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from tests.support.databases import DatabaseFactory

BACKENDS = ("postgresql", "sqlite")


async def empty_database(databases: DatabaseFactory, folder: Path, backend: str, label: str) -> str:
    """A new database with no tables: on the test's PostgreSQL, or an SQLite file in
    ``folder``."""
    if backend == "postgresql":
        return await databases.create(label)
    return f"sqlite+aiosqlite:///{folder / f'{label}.db'}"


def alembic_config(migrations: Path, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("sqlalchemy.url", url)
    return config
