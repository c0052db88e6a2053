"""The four services as `make run` starts them (devtools/run.py: the same console scripts,
`serve --migrate`, the same development defaults), pointed at this run's vhost, databases and
SMTP sink, each on a free port so a `make run` already going is left alone."""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from devtools.bench_infra import (
    BIN,
    Resources,
    cpu_seconds,
    free_port,
    rss_mb,
    servers_cpu_seconds,
)
from devtools.run import DEVELOPMENT_DEFAULTS, development_keys
from onboarding_shared.auth import DEFAULT_AUDIENCE, DEFAULT_ISSUER

SERVICES = ("users", "invitations", "mailer", "auth-listener")
DATABASE_VARIABLES = {
    "users": "USERS_DATABASE_URL",
    "invitations": "INVITATIONS_DATABASE_URL",
    "mailer": "MAILER_DATABASE_URL",
    "auth-listener": "AUTH_LISTENER_DATABASE_URL",
}
READY_TIMEOUT_SECONDS = 120.0


def sqlite_urls(folder: Path) -> dict[str, str]:
    """Fresh SQLite files, as `make run` keeps them under var/."""
    return {name: f"sqlite+aiosqlite:///{folder}/{name.replace('-', '_')}.db" for name in SERVICES}


def environment(
    amqp_url: str, database_urls: dict[str, str], smtp_port: int, keys_folder: Path
) -> dict[str, str]:
    """run.py's environment (defaults, development keys, then the caller's environment), with
    this run's broker, databases and sink on top."""
    return {
        **DEVELOPMENT_DEFAULTS,
        **development_keys(keys_folder),
        **os.environ,
        "AMQP_URL": amqp_url,
        "SMTP_PORT": str(smtp_port),
        **{DATABASE_VARIABLES[name]: url for name, url in database_urls.items()},
    }


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mb(self) -> float:
        return rss_mb(self.pid)


@dataclass
class System:
    """The running services of one stage; `replicas` holds extra mailers (P6)."""

    env: dict[str, str]
    folder: Path
    resources: Resources
    services: dict[str, Service] = field(default_factory=dict)
    replicas: list[Service] = field(default_factory=list)

    def start(self) -> System:
        for name in SERVICES:
            self.services[name] = self._spawn(name, name)
        self.wait_ready(self.services.values())
        return self

    def add_mailer_replica(self) -> Service:
        replica = self._spawn("mailer", f"mailer-{len(self.replicas) + 2}")
        self.wait_ready([replica])
        self.replicas.append(replica)
        return replica

    def _spawn(self, name: str, label: str) -> Service:
        port = free_port()
        log = self.folder / f"{label}.log"
        process = self.resources.spawn(
            label,
            [str(BIN / f"onboarding-{name}"), "serve", "--migrate"],
            env={**self.env, "HTTP_PORT": str(port)},
            log=log,
        )
        return Service(label, process, f"http://127.0.0.1:{port}", log)

    def url(self, name: str) -> str:
        return self.services[name].url

    def all(self) -> list[Service]:
        return [*self.services.values(), *self.replicas]

    def cpu_seconds(self) -> dict[str, float]:
        """Each service's CPU time so far, and the broker's and the database's."""
        own = {service.name: cpu_seconds(service.pid) for service in self.all()}
        return own | servers_cpu_seconds()

    def rss(self) -> dict[str, float]:
        return {service.name: service.rss_mb() for service in self.all()}

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {admin_token(self.env['AUTH_PRIVATE_KEY'])}"}

    @staticmethod
    def wait_ready(services: Iterable[Service]) -> None:
        pending = list(services)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while pending and time.monotonic() < deadline:
            pending = [service for service in pending if not _ready(service)]
            time.sleep(0.2)
        if pending:
            names = ", ".join(service.name for service in pending)
            raise RuntimeError(f"not ready within {READY_TIMEOUT_SECONDS:.0f}s: {names}")


def _ready(service: Service) -> bool:
    if service.process.poll() is not None:
        tail = service.log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{service.name} exited ({service.process.returncode}):\n{tail}")
    try:
        return httpx.get(f"{service.url}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def admin_token(private_pem: str) -> str:
    """A token as the users service would sign it: the services verify it locally."""
    key = load_pem_private_key(private_pem.encode(), password=None)
    now = datetime.now(UTC)
    claims = {
        "sub": str(uuid.uuid4()),
        "roles": ["admin"],
        "iat": now,
        "exp": now + timedelta(hours=2),
        "iss": DEFAULT_ISSUER,
        "aud": DEFAULT_AUDIENCE,
    }
    return jwt.encode(claims, key, algorithm="EdDSA")  # type: ignore[arg-type]


def metric_total(text: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus metric's samples with these labels, from /metrics text."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:{{(.*)}})? (\S+)$", line)
        if match and all(f'{key}="{value}"' in (match[1] or "") for key, value in labels.items()):
            total += float(match[2])
    return total
