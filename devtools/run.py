"""`make run`: the four services as separate processes with embedded defaults (SQLite under
var/, a development mail catcher writing var/mail/), behind a development gateway that makes
http://localhost:8001 the one public origin, as the Ingress does in a cluster; stopped together
by Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import aio_pika
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
BIN = Path(sys.executable).parent
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")

DEVELOPMENT_DEFAULTS = {
    "AMQP_URL": AMQP_URL,
    "LOG_FORMAT": "console",
    "WORKSPACE_NAME": "Onboarding Dev",
    "PUBLIC_URL": "http://localhost:8001",
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": "1025",
    "SMTP_TLS": "none",
    "SMTP_FROM": "Onboarding Dev <no-reply@localhost>",
    # The development gateway, on loopback, says who the client is (X-Forwarded-For).
    "TRUSTED_PROXIES": "127.0.0.1",
    "USERS_DATABASE_URL": f"sqlite+aiosqlite:///{VAR}/users.db",
    "INVITATIONS_DATABASE_URL": f"sqlite+aiosqlite:///{VAR}/invitations.db",
    "MAILER_DATABASE_URL": f"sqlite+aiosqlite:///{VAR}/mailer.db",
    "AUTH_LISTENER_DATABASE_URL": f"sqlite+aiosqlite:///{VAR}/auth_listener.db",
    # The first admin, created on the first start (development values only).
    "ADMIN_USERNAME": "admin",
    "ADMIN_EMAIL": "admin@example.com",
    "ADMIN_PASSWORD": "dev-admin-password",
}
# AUTH_PRIVATE_KEY and AUTH_PUBLIC_KEY come from this pair, made on the first `make run`.
DEVELOPMENT_KEYS = VAR / "dev-keys"

# Each service on its own port, the gateway on the public one in front of them.
SERVICE_PORTS = {"users": 8011, "invitations": 8012, "mailer": 8013, "auth-listener": 8014}
GATEWAY_PORT = 8001


def development_keys(folder: Path = DEVELOPMENT_KEYS) -> dict[str, str]:
    """The token signing key pair and the invitation token secret for development, created
    once and kept under var/."""
    private_path, public_path = folder / "auth_private.pem", folder / "auth_public.pem"
    if not (private_path.exists() and public_path.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        private_path.write_bytes(
            key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        )
        private_path.chmod(0o600)
        public_path.write_bytes(
            key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        )
    secret_path = folder / "invitation_token_secret"
    if not secret_path.exists():
        secret_path.write_text(secrets.token_urlsafe(48))
        secret_path.chmod(0o600)
    return {
        "AUTH_PRIVATE_KEY": private_path.read_text(),
        "AUTH_PUBLIC_KEY": public_path.read_text(),
        "INVITATION_TOKEN_SECRET": secret_path.read_text(),
    }


def broker_answers(url: str) -> bool:
    logging.getLogger("aio_pika").setLevel(logging.CRITICAL)  # our one line says it better

    async def probe() -> None:
        connection = await aio_pika.connect(url, timeout=3)
        await connection.close()

    try:
        asyncio.run(asyncio.wait_for(probe(), timeout=5))
    except Exception:
        return False
    return True


def main() -> int:
    if not broker_answers(AMQP_URL):
        print(
            f"RabbitMQ does not answer at {AMQP_URL.split('@')[-1]}: start it "
            "(`rabbitmq-server -detached`, or `docker run -d -p 5672:5672 rabbitmq:4-management`) "
            "or set AMQP_URL.",
            file=sys.stderr,
        )
        return 1
    (VAR / "mail").mkdir(parents=True, exist_ok=True)
    environment = {
        **DEVELOPMENT_DEFAULTS,
        **development_keys(),
        **os.environ,
        "AMQP_URL": AMQP_URL,
    }
    processes = [
        subprocess.Popen(command, env=environment, cwd=ROOT) for command in helper_commands()
    ]
    processes += [
        subprocess.Popen(
            [str(BIN / f"onboarding-{name}"), "serve", "--migrate"],
            env={**environment, "HTTP_PORT": str(port)},
            cwd=ROOT,
        )
        for name, port in SERVICE_PORTS.items()
    ]
    print(f"Open http://localhost:{GATEWAY_PORT}/ and sign in as admin / dev-admin-password.")
    print(
        "Services: "
        + "  ".join(f"{name} :{port}" for name, port in SERVICE_PORTS.items())
        + "  mail -> var/mail/"
    )
    print("Ctrl-C stops everything.", flush=True)
    return supervise(processes)


def helper_commands() -> list[list[str]]:
    """The development mail catcher, and the gateway that gives the services one origin."""
    upstreams = {name: f"http://127.0.0.1:{port}" for name, port in SERVICE_PORTS.items()}
    mailcatcher = ROOT / "devtools" / "mailcatcher.py"
    gateway = ["-m", "devtools.gateway", "--port", str(GATEWAY_PORT)]
    return [
        [sys.executable, str(mailcatcher), "--folder", str(VAR / "mail")],
        [sys.executable, *gateway, "--upstreams", json.dumps(upstreams)],
    ]


def supervise(processes: list[subprocess.Popen[bytes]]) -> int:
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not stopping and all(process.poll() is None for process in processes):
        time.sleep(0.2)
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
    failed = [p for p in processes if p.returncode not in (0, -signal.SIGTERM, -signal.SIGINT)]
    return 0 if stopping and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
