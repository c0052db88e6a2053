"""Where the tests find RabbitMQ and PostgreSQL.

TEST_AMQP_URL / TEST_DATABASE_URL when set (CI sets both); otherwise containers through
testcontainers when a Docker engine answers; otherwise the run fails with a clear message.
Tests never skip for lack of infrastructure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from contextlib import ExitStack
from typing import NoReturn

import pytest

RABBITMQ_IMAGE = "rabbitmq:4.1-management"
POSTGRES_IMAGE = "postgres:17-alpine"


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _missing(variable: str, what: str) -> NoReturn:
    pytest.fail(
        f"{what} is needed: set {variable} (e.g. `bash .ci/run` does) or make a Docker engine "
        "available for testcontainers.",
        pytrace=False,
    )


def amqp_url(stack: ExitStack) -> str:
    if url := os.environ.get("TEST_AMQP_URL"):
        return url
    if not docker_answers():
        _missing("TEST_AMQP_URL", "RabbitMQ")
    from testcontainers.community.rabbitmq import RabbitMqContainer

    container = stack.enter_context(RabbitMqContainer(RABBITMQ_IMAGE))
    host, port = container.get_container_host_ip(), container.get_exposed_port(5672)
    return f"amqp://guest:guest@{host}:{port}/"


def postgres_admin_url(stack: ExitStack) -> str:
    """A URL (postgresql+asyncpg://) of a role allowed to create databases."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        return url
    if not docker_answers():
        _missing("TEST_DATABASE_URL", "PostgreSQL")
    from testcontainers.postgres import PostgresContainer

    container = stack.enter_context(PostgresContainer(POSTGRES_IMAGE, driver="asyncpg"))
    connection_url: str = container.get_connection_url()
    return connection_url


Factory = Callable[[], str]
