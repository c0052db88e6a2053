"""The system as `make run` starts it, for browser tests: the four services as processes, the
development gateway in front of them as the one public origin, and the development mail catcher
keeping every mail as a file. PostgreSQL instead of SQLite, so the tests are not hostage to
SQLite's locking."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import httpx

from tests.support import auth
from tests.support.broker import Namespace
from tests.support.databases import DatabaseFactory
from tests.support.factories import INVITATION_TOKEN_SECRET
from tests.support.services import ServiceProcess
from tests.support.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]
ADMIN = (auth.ADMIN["username"], auth.ADMIN["email"], auth.ADMIN["password"])
_JOIN_CHAT = re.compile(r'href="([^"]+/join/[^"]+)"[^>]*>Join Chat<')


class HelperProcess:
    """A development tool (gateway, mail catcher) run as `make run` runs it."""

    def __init__(self, arguments: list[str], log: Path) -> None:
        self._log = log
        self._process = subprocess.Popen(
            [sys.executable, *arguments],
            cwd=ROOT,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()

    def log_tail(self) -> str:
        return self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""


@dataclass
class PublicSystem:
    url: str
    mail_folder: Path
    services: dict[str, ServiceProcess]
    helpers: list[HelperProcess] = field(default_factory=list)

    def mails_to(self, address: str) -> list[EmailMessage]:
        found = []
        for path in sorted(self.mail_folder.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            if address in str(message["To"]):
                found.append(message)
        return found

    async def join_link_for(self, address: str, timeout: float = 30) -> str:
        """The Join Chat link of the invitation the mail catcher received for ``address``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.mails_to(address):
                html = message.get_body(preferencelist=("html",))
                assert html is not None
                match = _JOIN_CHAT.search(str(html.get_content()))
                if match:
                    return match.group(1).replace("&amp;", "&")
            await asyncio.sleep(0.3)
        raise AssertionError(f"no invitation for {address} in {self.mail_folder} after {timeout}s")

    def stop(self) -> None:
        for process in self.services.values():
            process.stop()
        for helper in self.helpers:
            helper.stop()


async def start_public_system(
    amqp_url: str,
    databases: DatabaseFactory,
    namespace: Namespace,
    folder: Path,
    *,
    smtp: bool = True,
    services: tuple[str, ...] = ("users", "invitations", "mailer", "auth-listener"),
) -> PublicSystem:
    gateway_port, mail_port = free_port(), free_port()
    url = f"http://127.0.0.1:{gateway_port}"
    mail_folder = folder / "mail"
    environment = {
        "AMQP_URL": amqp_url,
        **namespace.environment,
        "WORKSPACE_NAME": "Acme Chat",
        "PUBLIC_URL": url,
        "CHAT_URL": "https://chat.acme.test/home",
        "SMTP_FROM": "Acme Chat <no-reply@acme.test>",
        "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
        "STATUS_INTERVAL_SECONDS": "1",
        "RETRY_DELAYS_SECONDS": "[0.5, 1]",
        "INVITATION_TOKEN_SECRET": INVITATION_TOKEN_SECRET,
        "TRUSTED_PROXIES": "127.0.0.1",  # the gateway
        **auth.environment(),
    }
    if smtp:
        environment |= {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(mail_port), "SMTP_TLS": "none"}
    for name in services:
        variable = f"{name.replace('-', '_').upper()}_DATABASE_URL"
        environment[variable] = await databases.create(name.replace("-", "_"))
    processes = {name: ServiceProcess(name, environment, folder).start() for name in services}
    upstreams = {name: process.url for name, process in processes.items()}
    helpers = [
        HelperProcess(
            ["devtools/mailcatcher.py", "--port", str(mail_port), "--folder", str(mail_folder)],
            folder / "mailcatcher.log",
        ),
        HelperProcess(
            [
                "-m",
                "devtools.gateway",
                "--port",
                str(gateway_port),
                "--upstreams",
                json.dumps(upstreams),
            ],
            folder / "gateway.log",
        ),
    ]
    system = PublicSystem(url, mail_folder, processes, helpers)
    try:
        await asyncio.gather(*(asyncio.to_thread(p.wait_ready) for p in processes.values()))
        await _wait_for(f"{url}/", helpers[1])
    except BaseException:
        system.stop()
        raise
    return system


async def _wait_for(url: str, gateway: HelperProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"the gateway did not answer within {timeout}s:\n{gateway.log_tail()}")
