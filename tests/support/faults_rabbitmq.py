"""A RabbitMQ node of the fault suite's own, which it may stop and restart.

The machine's broker (port 5672) is shared with everything else and must never be stopped, so
the suite starts a second node: its own name, ports, config file (/etc/rabbitmq/rabbitmq.conf
pins 5672), no plugins (management would take 15672), and data and logs in a temporary folder
that belongs to the rabbitmq user. It runs as that user with that user's home, so the Erlang
cookie is the one `rabbitmqctl` (which switches to the rabbitmq user) presents. It is stopped by
the process id it was started as, never by name.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.smtp import free_port

SERVER_SCRIPT = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
RABBITMQ_USER = "rabbitmq"
START_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 60
CTL_TIMEOUT_SECONDS = 60


def require_tools() -> tuple[str, str]:
    """setpriv and rabbitmqctl, or a clear failure: the suite never skips for lack of them."""
    setpriv, ctl = shutil.which("setpriv"), shutil.which("rabbitmqctl")
    missing = [
        what
        for what, found in (
            (f"the RabbitMQ server ({SERVER_SCRIPT})", SERVER_SCRIPT.exists()),
            ("rabbitmqctl", ctl is not None),
            ("setpriv (util-linux)", setpriv is not None),
        )
        if not found
    ]
    try:
        pwd.getpwnam(RABBITMQ_USER)
    except KeyError:
        missing.append(f"the {RABBITMQ_USER} user")
    if os.geteuid() != 0:
        missing.append("root (to run the node as the rabbitmq user)")
    if missing:
        pytest.fail(
            "the fault suite starts a RabbitMQ node of its own and needs: " + ", ".join(missing),
            pytrace=False,
        )
    assert setpriv is not None and ctl is not None
    return setpriv, ctl


def amqp_answers(port: int, timeout: float = 3.0) -> bool:
    """An AMQP 0-9-1 protocol header gets an answer: the node is up, not just its port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as probe:
            probe.sendall(b"AMQP\x00\x00\x09\x01")
            return bool(probe.recv(8))
    except OSError:
        return False


@dataclass(frozen=True)
class NodeLayout:
    folder: Path
    node: str
    port: int
    dist_port: int

    @property
    def environment(self) -> dict[str, str]:
        return {
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            # Not /etc/rabbitmq/rabbitmq-env.conf: it names the shared node.
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "rabbitmq-env.conf"),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_PID_FILE": str(self.folder / "node.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def write(self) -> None:
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            # guest may log in from this machine only, as on any default node.
            "loopback_users.guest = true\n"
            "log.console = false\n"
            "log.file.level = info\n"
        )
        (self.folder / "enabled_plugins").write_text("[].\n")
        (self.folder / "rabbitmq-env.conf").write_text("")
        account = pwd.getpwnam(RABBITMQ_USER)
        for path in (self.folder, *self.folder.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)


class PrivateRabbitNode:
    def __init__(self) -> None:
        self._setpriv, self._ctl = require_tools()
        # In /tmp itself: pytest's own temporary folders are private to root.
        folder = Path(tempfile.mkdtemp(prefix="faults-rabbitmq-"))
        self.layout = NodeLayout(
            folder=folder,
            node=f"faults-{uuid.uuid4().hex[:8]}@localhost",
            port=free_port(),
            dist_port=free_port(),
        )
        self.layout.write()
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.layout.port}/"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> PrivateRabbitNode:
        """Start the node (same name, ports and data as before) and wait until it answers."""
        assert not self.running, "already running"
        self.starts += 1
        account = pwd.getpwnam(RABBITMQ_USER)
        log = (self.layout.folder / f"server-{self.starts}.out").open("wb")
        self._process = subprocess.Popen(
            [
                self._setpriv,
                f"--reuid={account.pw_uid}",
                f"--regid={account.pw_gid}",
                "--init-groups",
                str(SERVER_SCRIPT),
            ],
            env={**os.environ, **self.layout.environment, "HOME": account.pw_dir},
            cwd=account.pw_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so it can be stopped as one
        )
        log.close()
        self._wait_until_answering()
        return self

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise AssertionError(f"the fault suite's RabbitMQ node exited:\n{self.log_tail()}")
            if amqp_answers(self.layout.port):
                return
            time.sleep(0.25)
        raise AssertionError(
            f"RabbitMQ node not up in {START_TIMEOUT_SECONDS}s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Stop gracefully: the start script turns SIGTERM into an orderly shutdown."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)  # our own group, started above
            self._process.wait(timeout=10)
        # The script returns once the VM is gone; wait for the port to be free as well.
        deadline = time.monotonic() + 10
        while amqp_answers(self.layout.port, timeout=0.5) and time.monotonic() < deadline:
            time.sleep(0.2)

    def ctl(self, *arguments: str) -> str:
        result = subprocess.run(
            [self._ctl, "--quiet", "-n", self.layout.node, *arguments],
            capture_output=True,
            text=True,
            timeout=CTL_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"rabbitmqctl {' '.join(arguments)} failed: {result.stderr}")
        return result.stdout

    def queue_depths(self, prefix: str) -> dict[str, int]:
        """Messages (ready and unacknowledged) of every queue whose name starts with prefix."""
        output = self.ctl("list_queues", "--no-table-headers", "name", "messages")
        depths = {}
        for line in output.splitlines():
            name, _, count = line.rpartition("\t")
            if name.startswith(prefix) and count.strip().isdigit():
                depths[name] = int(count)
        return depths

    def log_tail(self, lines: int = 30) -> str:
        logs = sorted(self.layout.folder.glob("server-*.out")) + sorted(
            (self.layout.folder / "log").glob("*.log")
        )
        return "\n".join(
            f"== {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            for path in logs
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.layout.folder, ignore_errors=True)
