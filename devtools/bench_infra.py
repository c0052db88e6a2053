"""What `make bench` starts and must take down again: processes, a RabbitMQ vhost, PostgreSQL
databases, an SMTP sink. Everything is registered with a `Resources` stack the moment it exists,
so a failure or Ctrl-C half-way still removes it (processes by their own pid, never by name)."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import quote

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BROKER_HOST = os.environ.get("BENCH_AMQP_HOST", "127.0.0.1:5672")
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
# A service that ignores SIGTERM this long is killed; its own graceful timeout is 15 s.
STOP_TIMEOUT_SECONDS = 30.0

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The shared servers' processes, by name: their CPU beside the services' tells what binds.
SERVER_PROCESSES = {"beam.smp": "rabbitmq", "postgres": "postgresql"}


def servers_cpu_seconds() -> dict[str, float]:
    """CPU time used so far by RabbitMQ and by PostgreSQL (every backend alive now), read off
    /proc by process name; read-only. A backend that exited since takes its time with it."""
    totals = dict.fromkeys(SERVER_PROCESSES.values(), 0.0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # gone meanwhile
        name = text[text.index("(") + 1 : text.rindex(")")]
        if name in SERVER_PROCESSES:
            fields = text.rsplit(")", 1)[1].split()
            ticks = int(fields[11]) + int(fields[12])
            totals[SERVER_PROCESSES[name]] += ticks / os.sysconf("SC_CLK_TCK")
    return totals


def rss_mb(pid: int) -> float:
    """Resident memory now (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1_000_000
    raise RuntimeError(f"no VmRSS for pid {pid}")


def run_blocking(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from anywhere, even inside a running loop (cleanup runs
    from both): in a thread with a loop of its own."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(factory()))
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


class Resources:
    """A stack of clean-ups, run in reverse order; each one's failure is reported and the
    others still run, so one stuck process never leaves a vhost or database behind."""

    def __init__(self) -> None:
        self._stack = ExitStack()

    def __enter__(self) -> Resources:
        return self

    def __exit__(self, *_: object) -> None:
        self._stack.close()

    def child(self) -> Resources:
        """A stack closed at the end of a stage, or with this one if the stage never ends
        normally (the event loop killed under it): closing twice does nothing."""
        child = Resources()
        self._stack.callback(child._stack.close)
        return child

    def defer(self, label: str, action: Callable[[], object]) -> None:
        def guarded() -> None:
            try:
                action()
            except Exception as error:
                print(f"cleanup of {label} failed: {error!r}", file=sys.stderr)

        self._stack.callback(guarded)

    def spawn(
        self,
        label: str,
        command: list[str],
        *,
        env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        output: IO[bytes] | int = log.open("wb") if log else subprocess.DEVNULL
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
        if log:
            assert not isinstance(output, int)
            self.defer(f"{label} log", output.close)
        self.defer(label, lambda: stop_process(process))
        return process


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM (after SIGCONT: a paused process would not act on it), then SIGKILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# RabbitMQ


def rabbitmqctl(*arguments: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *arguments], check=True, capture_output=True, timeout=60)


def private_vhost(resources: Resources, user: str = "guest", password: str = "guest") -> str:  # noqa: S107 (RabbitMQ's own default, loopback only)
    """A vhost of this run only, deleted with everything in it at the end; its AMQP URL."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", name)
    resources.defer(f"vhost {name}", lambda: rabbitmqctl("delete_vhost", name))
    rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
    return f"amqp://{user}:{password}@{BROKER_HOST}/{quote(name, safe='')}"


# PostgreSQL


def _admin_dsn() -> str:
    return make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql").render_as_string(False)


async def _execute_as_admin(statement: str) -> None:
    connection = await asyncpg.connect(_admin_dsn())
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def postgres_connections() -> str:
    """How full the server is: the services fail with "too many clients" when it is."""

    async def ask() -> str:
        connection = await asyncpg.connect(_admin_dsn())
        try:
            used = await connection.fetchval("SELECT count(*) FROM pg_stat_activity")
            limit = await connection.fetchval("SHOW max_connections")
        finally:
            await connection.close()
        return f"{used} of {limit} PostgreSQL connections in use"

    return run_blocking(ask)


def fresh_database(resources: Resources, label: str) -> str:
    """A new, empty database (dropped at the end, with its connections); its SQLAlchemy URL."""
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    run_blocking(lambda: _execute_as_admin(f'CREATE DATABASE "{name}"'))
    resources.defer(
        f"database {name}",
        lambda: run_blocking(
            lambda: _execute_as_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        ),
    )
    url = make_url(POSTGRES_ADMIN_URL).set(database=name)
    return url.render_as_string(hide_password=False)


# SMTP


@dataclass
class SmtpSink:
    """An SMTP server in its own process that keeps each mail as one file in `folder`, so a
    run can count what arrived and spot duplicates by Message-ID."""

    port: int
    folder: Path
    kind: str
    process: subprocess.Popen[bytes]

    def check_running(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"the SMTP sink ({self.kind}) exited: {self.process.returncode}")

    def clear(self) -> None:
        for path in self.folder.iterdir():
            path.unlink()

    def message_ids(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for path in self.folder.iterdir():
            with contextlib.suppress(FileNotFoundError):  # a file being written
                headers = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
                counts[str(headers.get("Message-ID", path.name))] += 1
        return counts

    def sample_size(self) -> int:
        """Bytes of one stored mail, or 0 if none arrived yet."""
        return next((path.stat().st_size for path in self.folder.iterdir()), 0)


def start_smtp_sink(resources: Resources) -> SmtpSink:
    """postfix's smtp-sink when installed (C, so the sink is never what is measured);
    otherwise aiosmtpd in its own process."""
    folder = Path(tempfile.mkdtemp(prefix="bench-mail-"))
    resources.defer(f"folder {folder}", lambda: shutil.rmtree(folder, ignore_errors=True))
    port = free_port()
    binary = shutil.which("smtp-sink") or shutil.which("smtp-sink", path="/usr/sbin")
    if binary:
        # Run as root it drops to this user, who must be able to write the dumps (it exits
        # when it cannot).
        folder.chmod(0o777)
        command = [binary, "-u", "nobody", "-d", f"{folder}/%H%M%S.", f"127.0.0.1:{port}", "1000"]
        kind = "postfix smtp-sink"
    else:
        command = [sys.executable, "-m", "devtools.bench_sink", str(port), str(folder)]
        kind = "aiosmtpd"
    process = resources.spawn("smtp sink", command)
    _wait_listening(port)
    return SmtpSink(port=port, folder=folder, kind=kind, process=process)


def _wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")
