"""Fixtures of the fault suite (`make faults`): a RabbitMQ node of its own for the whole run, a
fresh system per scenario, the baseline drain measured once, and the table at the end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.faults.harness import BURST, RESULTS, Baseline, Recovery, conclude
from tests.support.faults_network import BackgroundLoop
from tests.support.faults_rabbitmq import PrivateRabbitNode
from tests.support.faults_report import Expectations, save, table
from tests.support.faults_system import FaultLab, addresses


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: fault injection (`make faults`); starts its own RabbitMQ node"
    )


@pytest.fixture(scope="session")
def rabbit_node() -> Iterator[PrivateRabbitNode]:
    node = PrivateRabbitNode()
    try:
        yield node.start()
    finally:
        node.remove()


@pytest.fixture(scope="session")
def proxy_loop() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


async def open_lab(
    node: PrivateRabbitNode, postgres_admin_url: str, loop: BackgroundLoop, folder: Path
) -> FaultLab:
    if not node.running:  # a scenario that failed while the node was down
        await asyncio.to_thread(node.start)
    lab = FaultLab(node, postgres_admin_url, loop, folder)
    try:
        return await lab.start()
    except BaseException:
        await lab.close()
        raise


@pytest.fixture
async def lab(
    rabbit_node: PrivateRabbitNode,
    postgres_admin_url: str,
    proxy_loop: BackgroundLoop,
    tmp_path: Path,
) -> AsyncIterator[FaultLab]:
    system = await open_lab(rabbit_node, postgres_admin_url, proxy_loop, tmp_path)
    try:
        yield system
    finally:
        await system.close()


@pytest.fixture(scope="session")
async def baseline(
    rabbit_node: PrivateRabbitNode,
    postgres_admin_url: str,
    proxy_loop: BackgroundLoop,
    tmp_path_factory: pytest.TempPathFactory,
) -> Baseline:
    """The drain of a burst with no fault, from the first request: what recoveries compare to."""
    folder = tmp_path_factory.mktemp("baseline")
    system = await open_lab(rabbit_node, postgres_admin_url, proxy_loop, folder)
    try:
        started = time.monotonic()
        invited = await system.invite_burst(addresses(system.tag, BURST))
        figures = await conclude(
            system,
            scenario="baseline",
            fault="none",
            invited=invited,
            recovery=Recovery(at=started),
            limit=None,
            expected=Expectations(),
            started=started,
        )
    finally:
        await system.close()
    if figures.problems or figures.drain_seconds is None:
        pytest.fail(f"the baseline itself failed: {figures.problems}", pytrace=False)
    return Baseline(drain_seconds=figures.drain_seconds)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    path = save(RESULTS)
    terminalreporter.section("fault injection")
    for line in table(RESULTS):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(also in {path})")
