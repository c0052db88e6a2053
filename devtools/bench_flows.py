"""The figures of issue 12, measured against the running services from outside, as a user
sees them: through their HTTP APIs and by publishing on the broker like an identity provider.

P1 whole flow and P2 answer time (`invite_flow`), P3 login absorption (`absorb_logins`), P4
activation latency (`activation_latency`); P6 is `invite_flow` again with a second mailer."""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aio_pika
import httpx

from devtools.bench_infra import SmtpSink
from devtools.bench_system import System, metric_total
from onboarding_shared.contract import UserLoggedIn
from onboarding_shared.messaging.queues import AUTH_LISTENER_ACCOUNTS, AUTH_LISTENER_LOGINS
from onboarding_shared.messaging.topology import EVENTS_EXCHANGE

ADDRESSES_PER_REQUEST = 500
LOGINS_ROUTING_KEY = UserLoggedIn.spec.routing_key
LOGINS_QUEUE = AUTH_LISTENER_LOGINS.name
ACCOUNTS_QUEUE = AUTH_LISTENER_ACCOUNTS.name
# A stalled flow (parked messages, a crashed service) fails the run instead of hanging it.
NO_PROGRESS_SECONDS = 90.0
POLL_SECONDS = 0.1
# The users API is polled this often for P4: fine enough for a 250 ms goal, and a count query
# keeps it light enough not to become the load that is measured.
ACTIVATION_POLL_SECONDS = 0.05
PUBLISH_IN_FLIGHT = 256
# The services trust logins from any broker user; this one says where they came from.
LOGIN_SOURCE = "bench"


@dataclass(frozen=True)
class FlowResult:
    invitations: int
    rate: float  # invitations/s, first POST to all `sent`
    answer_seconds: list[float]  # each 500-address request
    mails: int  # received by the sink
    duplicates: int  # mails beyond the first with the same Message-ID
    cpu_ms_per_invitation: dict[str, float]  # each service's CPU over the flow, per invitation


@dataclass(frozen=True)
class LatencyResult:
    accounts: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu_ms_per_activation: dict[str, float]  # each service's CPU from the first login to the last


def admin_client(system: System, service: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=system.url(service), headers=system.admin_headers(), timeout=120
    )


async def wait_for(
    progress: Callable[[], Awaitable[int]], target: int, *, interval: float = POLL_SECONDS
) -> None:
    """Poll until `progress()` reaches `target`; fail when it stops moving for too long. A
    failed poll (a service answering 5xx while its database is short of connections) counts
    as no progress, not as the end of the run."""
    last, moved = -1, time.monotonic()
    while (current := await _or_last(progress, last)) < target:
        if current != last:
            last, moved = current, time.monotonic()
        elif time.monotonic() - moved > NO_PROGRESS_SECONDS:
            raise RuntimeError(f"stuck at {current} of {target} for {NO_PROGRESS_SECONDS:.0f}s")
        await asyncio.sleep(interval)


async def _or_last(progress: Callable[[], Awaitable[int]], last: int) -> int:
    try:
        return await progress()
    except httpx.HTTPError:
        return last


# P1, P2, P6


async def invite_flow(
    system: System, sink: SmtpSink, *, first: int, count: int, on_start: Callable[[], None]
) -> FlowResult:
    """`count` addresses posted in requests of 500, timed until every one is `sent`."""
    sink.clear()
    async with admin_client(system, "invitations") as client:
        already_sent = await _total(client, status="sent")
        cpu_before = system.cpu_seconds()
        started = time.perf_counter()
        on_start()
        answers = [
            await _post_invitations(client, range(batch, min(batch + 500, first + count)))
            for batch in range(first, first + count, ADDRESSES_PER_REQUEST)
        ]

        async def sent() -> int:
            sink.check_running()
            return await _total(client, status="sent") - already_sent

        await wait_for(sent, count, interval=0.25)
        elapsed = time.perf_counter() - started
    cpu_after = system.cpu_seconds()
    cpu = {
        name: (cpu_after[name] - cpu_before.get(name, cpu_after[name])) * 1000 / count
        for name in cpu_after
    }
    mails = sink.message_ids()
    duplicates = sum(times - 1 for times in mails.values())
    return FlowResult(count, count / elapsed, answers, sum(mails.values()), duplicates, cpu)


async def _post_invitations(client: httpx.AsyncClient, numbers: range) -> float:
    emails = [f"invitee{n}@example.com" for n in numbers]
    started = time.perf_counter()
    response = await client.post("/api/v1/invitations", json={"emails": emails})
    answered = time.perf_counter() - started
    response.raise_for_status()
    if (queued := response.json()["queued"]) != len(emails):
        raise RuntimeError(f"{queued} of {len(emails)} invitations queued: {response.text[:500]}")
    return answered


async def _total(client: httpx.AsyncClient, **filters: str) -> int:
    response = await client.get("/api/v1/invitations", params={**filters, "limit": 1})
    response.raise_for_status()
    total: int = response.json()["total"]
    return total


# P4


async def create_pending_accounts(system: System, count: int) -> dict[str, str]:
    """`count` accounts made by hand (pending until their first login): email -> id. Waits
    until the auth-listener has its copy of them all, so every login finds its account."""
    async with admin_client(system, "users") as client:
        limit = asyncio.Semaphore(4)  # argon2 hashing is the cost: more would only queue

        async def create(n: int) -> tuple[str, str]:
            email = f"member{n}@example.com"
            body = {
                "email": email,
                "name": f"Member {n}",
                "username": f"member{n}",
                "password": f"{uuid.uuid4().hex}-Aa1",
            }
            async with limit:
                response = await client.post("/api/v1/users", json=body)
            response.raise_for_status()
            return email, response.json()["id"]

        accounts = dict(await asyncio.gather(*(create(n) for n in range(count))))
    await _wait_queue_settled(system.env["AMQP_URL"], ACCOUNTS_QUEUE)
    return accounts


async def _wait_queue_settled(amqp_url: str, queue_name: str, quiet_seconds: float = 3) -> None:
    """Until the queue has been empty for `quiet_seconds` (the producer's outbox may still be
    relaying when it first looks empty)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        empty_since: float | None = None
        while empty_since is None or time.monotonic() - empty_since < quiet_seconds:
            declared = await queue.declare()
            waiting = declared.message_count or 0
            empty_since = (empty_since or time.monotonic()) if waiting == 0 else None
            await asyncio.sleep(0.2)


async def activation_latency(
    system: System, accounts: dict[str, str], logins_per_second: float
) -> LatencyResult:
    """Each pending account logs in once, at a steady rate; latency is from a login's publish
    to the users API counting one more account `active`.

    The k-th account counted active is matched to the k-th login published: logins are
    consumed in order (up to PREFETCH at once, 80 ms at 200/s), and a count is one cheap
    query, where reading back which accounts are active (a 200-row page, ~20 ms of the users
    service's time) every 50 ms would load the very service that is being timed."""
    async with admin_client(system, "users") as client:
        before = await _active_count(client)
        cpu_before = system.cpu_seconds()
        watcher = asyncio.create_task(_watch_active(client, before, len(accounts)))
        try:
            published = await _publish_steadily(system, accounts, logins_per_second)
            seen = await asyncio.wait_for(watcher, timeout=NO_PROGRESS_SECONDS)
        finally:
            watcher.cancel()
        cpu_after = system.cpu_seconds()
    latencies = sorted((at - sent) * 1000 for at, sent in zip(seen, published, strict=True))
    percentiles = statistics.quantiles(latencies, n=100, method="inclusive")
    cpu = {
        name: (cpu_after[name] - cpu_before.get(name, cpu_after[name])) * 1000 / len(accounts)
        for name in cpu_after
    }
    return LatencyResult(len(latencies), percentiles[49], percentiles[98], latencies[-1], cpu)


async def _publish_steadily(
    system: System, accounts: dict[str, str], per_second: float
) -> list[float]:
    """One login per account at `per_second`, on schedule whatever the confirms take; the
    time each was published."""
    published: list[float] = []
    connection = await aio_pika.connect(system.env["AMQP_URL"])
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(_events_exchange(system), ensure=False)
        confirms = []
        started = time.perf_counter()
        for n, email in enumerate(accounts):
            await asyncio.sleep(max(0.0, started + n / per_second - time.perf_counter()))
            published.append(time.perf_counter())
            confirms.append(asyncio.create_task(_publish_login(exchange, email)))
        await asyncio.gather(*confirms)
    return published


async def _watch_active(client: httpx.AsyncClient, before: int, count: int) -> list[float]:
    """When the number of active accounts first reached before + 1, + 2, ... + count."""
    seen: list[float] = []
    while len(seen) < count:
        try:
            active = await _active_count(client) - before
        except httpx.HTTPError:
            active = len(seen)  # as in wait_for: a failed poll is no news
        now = time.perf_counter()
        seen += [now] * (min(active, count) - len(seen))
        await asyncio.sleep(ACTIVATION_POLL_SECONDS)
    return seen


async def _active_count(client: httpx.AsyncClient) -> int:
    response = await client.get("/api/v1/users", params={"status": "active", "limit": 1})
    response.raise_for_status()
    total: int = response.json()["total"]
    return total


# P3


async def absorb_logins(
    system: System, email: str, count: int, on_start: Callable[[], None]
) -> float:
    """`count` logins of an already active account, waiting in the queue when the
    auth-listener resumes (as in the consume ceiling); logins/s until all are handled."""
    listener = system.services["auth-listener"]
    async with httpx.AsyncClient(base_url=listener.url, timeout=30) as client:
        baseline = await _logins_handled(client)
        # Paused while the queue fills, so what is timed is the consumer alone, not the
        # consumer competing with this process's publishing for the two cores.
        listener.process.send_signal(signal.SIGSTOP)
        try:
            await _publish_logins(system, email, count)
        finally:
            listener.process.send_signal(signal.SIGCONT)
        started = time.perf_counter()
        on_start()

        async def handled() -> int:
            return await _logins_handled(client) - baseline

        await wait_for(handled, count)
        return count / (time.perf_counter() - started)


async def _logins_handled(client: httpx.AsyncClient) -> int:
    """Logins the auth-listener has handled, from its own counter."""
    response = await client.get("/metrics")
    response.raise_for_status()
    return int(metric_total(response.text, "onboarding_logins_total", channel="event"))


async def _publish_logins(system: System, email: str, count: int) -> None:
    connection = await aio_pika.connect(system.env["AMQP_URL"])
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(_events_exchange(system), ensure=False)
        remaining = count

        async def publisher() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await _publish_login(exchange, email)

        await asyncio.gather(*(publisher() for _ in range(PUBLISH_IN_FLIGHT)))


async def _publish_login(exchange: aio_pika.abc.AbstractExchange, email: str) -> None:
    """As an identity provider does (docs/integrating.md)."""
    now = datetime.now(UTC).isoformat()
    event_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    envelope = {
        "event_id": event_id,
        "event_type": "UserLoggedIn",
        "event_version": 1,
        "occurred_at": now,
        "producer": LOGIN_SOURCE,
        "correlation_id": correlation_id,
        "data": {"email": email, "logged_in_at": now, "source": LOGIN_SOURCE},
    }
    message = aio_pika.Message(
        json.dumps(envelope).encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=event_id,
        correlation_id=correlation_id,
        type="UserLoggedIn",
    )
    await exchange.publish(message, routing_key=LOGINS_ROUTING_KEY, mandatory=True, timeout=30)


def _events_exchange(system: System) -> str:
    return system.env.get("EVENTS_EXCHANGE", EVENTS_EXCHANGE)
