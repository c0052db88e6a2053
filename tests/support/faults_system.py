"""The four services as real processes for the fault suite, wired through what it can break:
its own RabbitMQ node (a vhost per scenario), a proxy in front of PostgreSQL, and a proxy in
front of a scriptable SMTP sink. Every process can be killed (SIGKILL or SIGTERM) and restarted.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from tests.support import auth
from tests.support.databases import DatabaseFactory
from tests.support.factories import INVITATION_TOKEN_SECRET
from tests.support.faults_network import BackgroundLoop, FaultProxy
from tests.support.faults_rabbitmq import PrivateRabbitNode
from tests.support.faults_smtp import FaultySmtpSink
from tests.support.services import ServiceProcess

SERVICES = ("users", "invitations", "mailer", "auth-listener")
FINAL_STATUSES = frozenset({"sent", "failed"})
PAGE = 200  # the API's largest page

# What every service of the suite runs with, printed in docs/reliability.md. The retry delays
# are the production defaults on purpose: a message held through an outage waits up to the
# last tier (30 s) before it comes back, and the drain limit must hold with that.
SUITE_SETTINGS = {
    "RETRY_DELAYS_SECONDS": "[1, 5, 30]",
    "PREFETCH": "16",
    "DB_POOL_SIZE": "10",
    "SMTP_MAX_CONNECTIONS": "8",
    "SMTP_TIMEOUT_SECONDS": "30",
    "GRACEFUL_TIMEOUT_SECONDS": "15",
    "PUBLISH_TIMEOUT_SECONDS": "10",
    # Shorter than the defaults (1 s, 10 s) only so an idle relay or heartbeat does not add
    # its interval to every measurement; neither decides whether anything is retried.
    "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
    "STATUS_INTERVAL_SECONDS": "1",
}
# Messages one mailer process holds unacknowledged (PREFETCH): any of them may have been
# accepted by the SMTP server and not yet recorded when the process or its database goes.
IN_FLIGHT_WINDOW = int(SUITE_SETTINGS["PREFETCH"])


class KillableService(ServiceProcess):
    """A ServiceProcess that can also be signalled without waiting for a clean stop."""

    def start(self) -> KillableService:
        super().start()
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def send(self, sig: signal.Signals) -> None:
        assert self._process is not None
        self._process.send_signal(sig)

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if still running after timeout."""
        assert self._process is not None
        try:
            return self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill_now(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)


class FaultLab:
    """One scenario's system. `start()` it, break it, `close()` it."""

    def __init__(
        self,
        node: PrivateRabbitNode,
        postgres_admin_url: str,
        loop: BackgroundLoop,
        folder: Path,
    ) -> None:
        self.node = node
        self.vhost = f"faults-{uuid.uuid4().hex[:8]}"
        self.tag = self.vhost.removeprefix("faults-")
        self.folder = folder
        self.databases = DatabaseFactory(postgres_admin_url)
        self.smtp = FaultySmtpSink()
        postgres = make_url(postgres_admin_url)
        self.postgres_proxy = FaultProxy(loop, postgres.host or "127.0.0.1", postgres.port or 5432)
        self.smtp_proxy = FaultProxy(loop, "127.0.0.1", self.smtp.port)
        self.services: dict[str, KillableService] = {}
        self._environment: dict[str, str] = {}
        self._incarnations = 0

    @property
    def amqp_url(self) -> str:
        return f"{self.node.amqp_url}{self.vhost}"

    def url(self, service: str) -> str:
        return self.services[service].url

    async def start(self) -> FaultLab:
        await asyncio.to_thread(self._create_vhost)
        self.smtp.start()
        await self.postgres_proxy.start()
        await self.smtp_proxy.start()
        urls = {name: await self._database(name) for name in SERVICES}
        self._environment = self._service_environment(urls)
        for name in SERVICES:
            self.services[name] = self._spawn(name)
        await asyncio.gather(*(self.wait_ready(name) for name in SERVICES))
        return self

    def _create_vhost(self) -> None:
        self.node.ctl("add_vhost", self.vhost)
        self.node.ctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")

    async def _database(self, service: str) -> str:
        direct = await self.databases.create(service.replace("-", "_"))
        # Through the proxy: that is the connection the suite cuts.
        return (
            make_url(direct)
            .set(host="127.0.0.1", port=self.postgres_proxy.port)
            .render_as_string(hide_password=False)
        )

    def _service_environment(self, urls: dict[str, str]) -> dict[str, str]:
        return {
            "AMQP_URL": self.amqp_url,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp_proxy.port),
            "SMTP_TLS": "none",
            "SMTP_FROM": "Acme Chat <no-reply@acme.test>",
            "WORKSPACE_NAME": "Acme Chat",
            "PUBLIC_URL": "http://chat.acme.test",
            "LOG_LEVEL": "INFO",
            "USERS_DATABASE_URL": urls["users"],
            "INVITATIONS_DATABASE_URL": urls["invitations"],
            "MAILER_DATABASE_URL": urls["mailer"],
            "AUTH_LISTENER_DATABASE_URL": urls["auth-listener"],
            "INVITATION_TOKEN_SECRET": INVITATION_TOKEN_SECRET,
            **SUITE_SETTINGS,
            **auth.environment(),
        }

    def _spawn(self, name: str) -> KillableService:
        self._incarnations += 1
        folder = self.folder / f"{self._incarnations:02d}-{name}"
        folder.mkdir(parents=True)
        return KillableService(name, self._environment, folder).start()

    async def wait_ready(self, name: str, timeout: float = 90) -> None:
        await asyncio.to_thread(self.services[name].wait_ready, timeout)

    async def kill(self, name: str, sig: signal.Signals) -> int | None:
        """Signal the service; return its exit code (None if it did not exit in time)."""
        service = self.services[name]
        service.send(sig)
        grace = float(SUITE_SETTINGS["GRACEFUL_TIMEOUT_SECONDS"]) + 15
        code = await asyncio.to_thread(service.wait_exit, grace)
        if code is None:
            service.kill_now()
        return code

    async def restart(self, name: str) -> float:
        """Start a new process of the service, as a supervisor would; when it was ready."""
        self.services[name] = self._spawn(name)
        await self.wait_ready(name)
        return time.monotonic()

    def log_tails(self, lines: int = 25) -> str:
        return "\n".join(
            f"== {name}\n{service.log_tail(lines)}" for name, service in self.services.items()
        )

    # The API, as the admin console uses it.

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url("invitations"), timeout=30, headers=auth.admin_headers()
        )

    async def invite(self, addresses: list[str]) -> httpx.Response:
        async with self.client() as client:
            return await client.post("/api/v1/invitations", json={"emails": addresses})

    async def invite_burst(self, addresses: list[str], per_request: int = 20) -> set[str]:
        """Post the addresses in requests of `per_request`, all at once; the queued ones."""
        batches = [addresses[i : i + per_request] for i in range(0, len(addresses), per_request)]
        answers = await asyncio.gather(*(self.invite(batch) for batch in batches))
        queued = set()
        for answer in answers:
            assert answer.status_code == 202, f"{answer.status_code} {answer.text[:300]}"
            queued |= {
                result["input"].lower()
                for result in answer.json()["results"]
                if result["outcome"] == "queued"
            }
        return queued

    async def statuses(self) -> dict[str, str] | None:
        """Every invitation's status by address, or None while the API cannot answer."""
        found: dict[str, str] = {}
        try:
            async with self.client() as client:
                while True:
                    page = await client.get(
                        "/api/v1/invitations", params={"limit": PAGE, "offset": len(found)}
                    )
                    if page.status_code != 200:
                        return None
                    body: dict[str, Any] = page.json()
                    found |= {item["email"].lower(): item["status"] for item in body["items"]}
                    if not body["items"] or len(found) >= body["total"]:
                        return found
        except httpx.HTTPError:
            return None

    # The broker side.

    async def queue_depths(self) -> dict[str, int] | None:
        try:
            return await asyncio.to_thread(self._queue_depths)
        except AssertionError:
            return None  # the node is down or busy; ask again later

    def _queue_depths(self) -> dict[str, int]:
        output = self.node.ctl(
            "list_queues", "-p", self.vhost, "--no-table-headers", "name", "messages"
        )
        depths = {}
        for line in output.splitlines():
            name, _, count = line.strip().rpartition("\t")
            if count.isdigit():
                depths[name] = int(count)
        return depths

    async def close(self) -> None:
        await asyncio.gather(
            *(asyncio.to_thread(s.stop) for s in self.services.values()), return_exceptions=True
        )
        for service in self.services.values():
            service.kill_now()
        await self.postgres_proxy.close()
        await self.smtp_proxy.close()
        self.smtp.stop()
        await self.databases.drop_all()
        if self.node.running:
            await asyncio.to_thread(self.node.ctl, "delete_vhost", self.vhost)


def addresses(tag: str, count: int, start: int = 0) -> list[str]:
    return [f"person{n}.{tag}@example.com" for n in range(start, start + count)]


def lowered(values: Iterable[str]) -> set[str]:
    return {value.lower() for value in values}
