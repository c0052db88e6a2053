"""`make bench`: throughput of the delivery pipeline on this machine, printed as figures.

Measures, against the real RabbitMQ and PostgreSQL (BENCH_AMQP_URL, BENCH_DATABASE_URL; by
default the local ones):
1. the outbox relay alone: rows published with confirms per second;
2. the whole invite flow in one process: addresses posted -> emails accepted by an SMTP sink
   -> invitations marked sent, per second, with the peak memory of the process;
3. the memory of the users service, started as its own process, under concurrent hostile and
   largest-allowed avatar uploads, and whether it falls back afterwards.
"""

from __future__ import annotations

import asyncio
import io
import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import asyncpg
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from faststream.rabbit import Channel, RabbitBroker
from PIL import Image
from sqlalchemy import insert
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from invitations.adapters.orm import messaging as invitations_tables
from invitations.bootstrap import MIGRATIONS as INVITATIONS_MIGRATIONS
from invitations.bootstrap import create_app as create_invitations
from invitations.settings import InvitationsSettings
from mailer.bootstrap import MIGRATIONS as MAILER_MIGRATIONS
from mailer.bootstrap import create_app as create_mailer
from mailer.settings import MailerSettings
from onboarding_shared.auth import DEFAULT_AUDIENCE, DEFAULT_ISSUER
from onboarding_shared.contract import UserActivated, new_event
from onboarding_shared.db import create_engine, session_factory
from onboarding_shared.messaging.outbox import OutboxRelay, RelaySettings, outbox_row
from onboarding_shared.messaging.publisher import RabbitPublisher
from onboarding_shared.schema import migrate
from onboarding_shared.settings import broker_user

AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
OUTBOX_ROWS = int(os.environ.get("BENCH_OUTBOX_ROWS", "5000"))
INVITATIONS = int(os.environ.get("BENCH_INVITATIONS", "2000"))
AVATAR_UPLOADS = int(os.environ.get("BENCH_AVATAR_UPLOADS", "6"))
# What the users service may reach while avatars are uploaded (issue 10: one 3 KB PNG took it
# to 474 MB, six at once to 2.2 GB).
AVATAR_RSS_CEILING_MB = 250
# A key pair of this run only: the services verify the admin token the bench posts with.
SIGNING_KEY = Ed25519PrivateKey.generate()
INVITATION_TOKEN_SECRET = uuid.uuid4().hex + uuid.uuid4().hex


def public_key_pem() -> str:
    public = SIGNING_KEY.public_key()
    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def private_key_pem() -> str:
    return SIGNING_KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


def admin_token() -> str:
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "roles": ["admin"],
        "iat": now,
        "exp": now + 3600,
        "iss": DEFAULT_ISSUER,
        "aud": DEFAULT_AUDIENCE,
    }
    return jwt.encode(claims, SIGNING_KEY, algorithm="EdDSA")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def create_database(label: str) -> str:
    admin = make_url(ADMIN_URL)
    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(
        admin.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    return admin.set(database=name).render_as_string(hide_password=False)


async def drop_databases(urls: list[str]) -> None:
    admin = make_url(ADMIN_URL)
    connection = await asyncpg.connect(
        admin.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    for url in urls:
        await connection.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    await connection.close()


async def bench_outbox_relay(database_url: str, exchange: str) -> float:
    await asyncio.to_thread(migrate, database_url, INVITATIONS_MIGRATIONS)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    rows = [
        outbox_row(
            new_event(
                UserActivated(user_id=uuid.uuid4(), activated_at=datetime.now(UTC)),
                producer="bench",
            )
        )
        for _ in range(OUTBOX_ROWS)
    ]
    async with sessions() as session, session.begin():
        await session.execute(insert(invitations_tables.outbox), rows)
    broker = RabbitBroker(AMQP_URL, default_channel=Channel(on_return_raises=True))
    await broker.connect()
    # A queue bound to the key, so the mandatory publishes are routable.
    connection = await broker.connect()
    async with connection.channel() as channel:
        target = await channel.declare_exchange(exchange, "topic", durable=True)
        queue = await channel.declare_queue(
            f"{exchange}.sink", arguments={"x-queue-type": "quorum"}, durable=True
        )
        await queue.bind(target, "#")
    relay = OutboxRelay(
        sessions,
        invitations_tables.outbox,
        RabbitPublisher(broker, exchange, timeout=30, user_id=broker_user(AMQP_URL)),
        RelaySettings(batch_size=250),
    )
    started = time.perf_counter()
    while await relay.relay_once():
        pass
    elapsed = time.perf_counter() - started
    async with connection.channel() as channel:
        await channel.queue_delete(f"{exchange}.sink")
        await channel.exchange_delete(exchange)
    await broker.stop()
    await engine.dispose()
    return OUTBOX_ROWS / elapsed


async def bench_invite_flow(
    invitations_url: str, mailer_url: str, exchange: str, smtp_port: int
) -> tuple[float, float, float]:
    common: dict[str, Any] = {
        "amqp_url": AMQP_URL,
        "events_exchange": exchange,
        "queue_prefix": f"{exchange}.",
        "http_port": 1,
        "prefetch": int(os.environ.get("BENCH_PREFETCH", "32")),
        "db_pool_size": 20,
        "auth_public_key": public_key_pem(),
    }
    await asyncio.to_thread(migrate, invitations_url, INVITATIONS_MIGRATIONS)
    await asyncio.to_thread(migrate, mailer_url, MAILER_MIGRATIONS)
    invitations_app = create_invitations(
        InvitationsSettings(
            database_url=invitations_url,
            invitation_token_secret=INVITATION_TOKEN_SECRET,
            **common,
        )
    )
    mailer_app = create_mailer(
        MailerSettings(
            database_url=mailer_url,
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            smtp_tls="none",
            **common,
        )
    )
    async with (
        mailer_app.router.lifespan_context(mailer_app),
        invitations_app.router.lifespan_context(invitations_app),
    ):
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=invitations_app),
            base_url="http://bench",
            headers={"Authorization": f"Bearer {admin_token()}"},
        )
        started = time.perf_counter()
        for batch in range(0, INVITATIONS, 500):
            emails = [f"person{n}@example.com" for n in range(batch, min(batch + 500, INVITATIONS))]
            response = await client.post("/api/v1/invitations", json={"emails": emails})
            response.raise_for_status()
        posted = time.perf_counter() - started
        while True:
            listing = (
                await client.get("/api/v1/invitations", params={"status": "sent", "limit": 1})
            ).json()
            if listing["total"] >= INVITATIONS:
                break
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
        await client.aclose()
        queues = [
            c.queue for app in (invitations_app, mailer_app) for c in app.state.runtime.consumers
        ]
        connection = await invitations_app.state.runtime.broker.connect()
        async with connection.channel() as channel:
            for queue in queues:
                retries = [queue.retry_queue(n) for n in range(1, queue.max_attempts)]
                for name in (queue.name, queue.parking_queue, *retries):
                    await channel.queue_delete(name)
    return INVITATIONS / posted, INVITATIONS / elapsed, peak_rss_mib()


def png_bomb() -> bytes:
    """5000x5000 pixels, 1 bit each, ~3 KB: under the old 25-megapixel limit."""
    output = io.BytesIO()
    Image.new("1", (5000, 5000)).save(output, format="PNG", optimize=True)
    return output.getvalue()


def largest_allowed_png() -> bytes:
    """2000x2000 pixels (the default AVATAR_MAX_PIXELS) with a palette: the costliest decode
    measured per pixel, since it is converted to RGBA and scaled premultiplied."""
    image = Image.new("P", (2000, 2000))
    image.putpalette([n % 256 for n in range(768)])
    image.paste(7, (0, 0, 1000, 1000))
    output = io.BytesIO()
    image.save(output, format="PNG", optimize=True)
    return output.getvalue()


def process_memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (the peak so far) of a process, in MB."""
    figures: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            figures[name] = int(value.split()[0]) * 1024 / 1_000_000
    return figures


async def upload_at_once(
    client: httpx.AsyncClient, pid: int, path: str, upload: bytes
) -> tuple[list[int], float]:
    """The uploads, all at once, with the highest RSS sampled meanwhile (every 5 ms)."""
    peak = 0.0
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process_memory_mb(pid)["VmRSS"])
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    responses = await asyncio.gather(
        *(
            client.put(path, files={"image": ("me.png", upload, "image/png")})
            for _ in range(AVATAR_UPLOADS)
        )
    )
    done.set()
    await sampler
    return [response.status_code for response in responses], peak


async def bench_avatar_memory(database_url: str, exchange: str) -> list[str]:
    """The users service as a real process (`onboarding-users serve --migrate`)."""
    port = free_port()
    environment = {
        **os.environ,
        "AMQP_URL": AMQP_URL,
        "EVENTS_EXCHANGE": exchange,
        "QUEUE_PREFIX": f"{exchange}.",
        "QUEUE_EXPIRES_SECONDS": "60",
        "USERS_DATABASE_URL": database_url,
        "HTTP_PORT": str(port),
        "AUTH_PRIVATE_KEY": private_key_pem(),
        "AUTH_PUBLIC_KEY": public_key_pem(),
        "ADMIN_USERNAME": "bench",
        "ADMIN_EMAIL": "bench@example.com",
        "ADMIN_PASSWORD": uuid.uuid4().hex,
        "LOG_LEVEL": "WARNING",
    }
    script = Path(sys.executable).parent / "onboarding-users"
    lines: list[str] = []
    with TemporaryDirectory() as folder, (Path(folder) / "users.log").open("w+b") as log:
        service = await asyncio.create_subprocess_exec(
            str(script), "serve", "--migrate", env=environment, stdout=log, stderr=log
        )
        try:
            base = f"http://127.0.0.1:{port}"
            client = httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {admin_token()}"}, timeout=120
            )
            async with client:
                await wait_ready(client, service, log)
                created = await client.post(
                    "/api/v1/users",
                    json={
                        "email": "ada@example.com",
                        "name": "Ada Lovelace",
                        "username": "ada",
                        "password": uuid.uuid4().hex + "-Aa1",
                    },
                )
                if created.status_code != 201:
                    raise RuntimeError(f"creating a user: {created.status_code} {created.text}")
                path = f"/api/v1/users/{created.json()['id']}/avatar"
                idle = process_memory_mb(service.pid)["VmRSS"]
                lines.append(f"users service idle: {idle:.0f} MB RSS")
                for label, upload in [
                    ("5000x5000 1-bit PNGs (a decompression bomb)", png_bomb()),
                    ("2000x2000 palette PNGs (the largest allowed)", largest_allowed_png()),
                ]:
                    codes, peak = await upload_at_once(client, service.pid, path, upload)
                    await asyncio.sleep(5)
                    after = process_memory_mb(service.pid)["VmRSS"]
                    verdict = "within" if peak <= AVATAR_RSS_CEILING_MB else "OVER"
                    lines.append(
                        f"{AVATAR_UPLOADS} concurrent {label} of {len(upload) / 1000:.0f} KB, "
                        f"answers {sorted(set(codes))}: peak {peak:.0f} MB RSS "
                        f"({verdict} the {AVATAR_RSS_CEILING_MB} MB ceiling), "
                        f"{after:.0f} MB 5 s later (idle {idle:.0f} MB)"
                    )
                hwm = process_memory_mb(service.pid)["VmHWM"]
                lines.append(f"users service high-water mark over the run: {hwm:.0f} MB")
        finally:
            if service.returncode is None:
                service.terminate()
                await asyncio.wait_for(service.wait(), timeout=30)
    return lines


async def wait_ready(
    client: httpx.AsyncClient, service: asyncio.subprocess.Process, log: Any, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.returncode is not None:
            log.seek(0)
            raise RuntimeError(f"the users service exited:\n{log.read().decode()[-3000:]}")
        try:
            if (await client.get("/ready")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the users service was not ready within {timeout:.0f}s")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def start_smtp_sink(port: int) -> subprocess.Popen[bytes]:
    """The SMTP server runs in its own process, as in production: in this one it would compete
    for the interpreter lock and become the bottleneck being measured."""
    catcher = Path(__file__).parent / "mailcatcher.py"
    return subprocess.Popen(
        [sys.executable, str(catcher), "--port", str(port), "--discard"],
        stdout=subprocess.DEVNULL,
    )


async def run_benchmarks(smtp_port: int) -> None:
    tag = f"bench{uuid.uuid4().hex[:8]}"
    databases = [
        await create_database("outbox"),
        await create_database("inv"),
        await create_database("mail"),
        await create_database("users"),
    ]
    try:
        relay_rate = await bench_outbox_relay(databases[0], f"{tag}.relay")
        api_rate, flow_rate, peak_mib = await bench_invite_flow(
            databases[1], databases[2], f"{tag}.events", smtp_port
        )
        avatar_lines = await bench_avatar_memory(databases[3], f"{tag}.users")
    finally:
        await drop_databases(databases)
    print(f"outbox relay, {OUTBOX_ROWS} rows, confirms, PostgreSQL: {relay_rate:8.0f} events/s")
    print(
        f"invite API, {INVITATIONS} addresses in requests of 500: "
        f"{api_rate:8.0f} invitations/s accepted"
    )
    print(
        "invite flow end to end (API -> outbox -> broker -> mailer -> SMTP -> EmailSent -> "
        f"sent): {flow_rate:8.0f} invitations/s"
    )
    print(f"peak memory of the process running both services: {peak_mib:.0f} MiB")
    for line in avatar_lines:
        print(line)


def main() -> None:
    smtp_port = free_port()
    sink = start_smtp_sink(smtp_port)
    try:
        asyncio.run(run_benchmarks(smtp_port))
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
