"""Running services for tests: in this process (integration) or as real processes (e2e)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from tests.support.smtp import free_port

BIN = Path(sys.executable).parent


@asynccontextmanager
async def in_process(
    create_app: Callable[[Any], FastAPI], settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The service's whole runtime (broker, consumers, relay) with an HTTP client on its app."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


class ServiceProcess:
    """One service started as its console script, the way `make run` and containers start it."""

    def __init__(self, name: str, environment: dict[str, str], log_folder: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._environment = {**os.environ, **environment, "HTTP_PORT": str(self.port)}
        self._log_path = log_folder / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        log = self._log_path.open("wb")
        self._process = subprocess.Popen(
            [str(BIN / f"onboarding-{self.name}"), "serve", "--migrate"],
            env=self._environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} not ready within {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30) -> int | None:
        if self._process is None or self._process.poll() is not None:
            return self._process.returncode if self._process else None
        self._process.send_signal(signal.SIGTERM)
        try:
            return self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            raise AssertionError(f"{self.name} ignored SIGTERM for {timeout}s") from None

    def log_tail(self, lines: int = 40) -> str:
        if not self._log_path.exists():
            return ""
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])
