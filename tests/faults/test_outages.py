"""Dependencies that go away during a burst and come back: PostgreSQL (45 s), the SMTP server
answering 421 (60 s), the broker (down 39 s, and a plain restart); and the database cut in
the middle of the requests that create invitations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.faults.harness import Baseline, Recovery, conclude, run_burst, verdict
from tests.support.faults_report import Expectations
from tests.support.faults_smtp import TRY_LATER
from tests.support.faults_system import IN_FLIGHT_WINDOW, FaultLab, addresses

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

DATABASE_OUTAGE_SECONDS = 45
SMTP_REFUSAL_SECONDS = 60
BROKER_DOWN_SECONDS = 39


async def test_database_unreachable_for_45_s_during_a_burst(
    lab: FaultLab, baseline: Baseline
) -> None:
    async def inject(lab: FaultLab) -> Recovery:
        await lab.postgres_proxy.cut()
        await asyncio.sleep(DATABASE_OUTAGE_SECONDS)  # the outage itself: its length is the fault
        await lab.postgres_proxy.restore()
        return Recovery(at=time.monotonic())

    figures = await run_burst(
        lab,
        scenario="database unreachable 45 s",
        fault="every service's PostgreSQL connection refused and reset for 45 s",
        inject=inject,
        baseline=baseline,
    )
    verdict(figures, lab)


async def test_smtp_answers_421_for_60_s_during_a_burst(lab: FaultLab, baseline: Baseline) -> None:
    async def inject(lab: FaultLab) -> Recovery:
        lab.smtp.handler.refuse_sessions_with = TRY_LATER
        await asyncio.sleep(SMTP_REFUSAL_SECONDS)  # the refusal's length is the fault
        lab.smtp.handler.refuse_sessions_with = None
        refused = lab.smtp.handler.refusals["421"]
        return Recovery(at=time.monotonic(), notes=[f"{refused} sessions answered 421"])

    figures = await run_burst(
        lab,
        scenario="SMTP 421 for 60 s",
        fault="the SMTP server answers every MAIL FROM with 421 for 60 s",
        inject=inject,
        baseline=baseline,
    )
    verdict(figures, lab)


SMTP_CLOSED_SECONDS = 15
# Longer than SMTP_TIMEOUT_SECONDS (30): sessions caught by it time out before it ends.
SMTP_UNREACHABLE_SECONDS = 35


async def smtp_not_listening(lab: FaultLab) -> None:
    # Refused connections fail at once: a shorter outage exercises the same path.
    lab.smtp.stop_listening()
    await asyncio.sleep(SMTP_CLOSED_SECONDS)  # the outage's length is the fault
    lab.smtp.listen_again()


async def smtp_blackholed(lab: FaultLab) -> None:
    # Sessions hang until SMTP_TIMEOUT_SECONDS; the restore drops what was held.
    await lab.smtp_proxy.blackhole()
    await asyncio.sleep(SMTP_UNREACHABLE_SECONDS)  # the outage's length is the fault
    await lab.smtp_proxy.restore()


@pytest.mark.parametrize(
    ("outage", "scenario", "fault"),
    [
        pytest.param(
            smtp_not_listening,
            "SMTP not listening 15 s",
            "the SMTP server stops listening for 15 s",
            id="closed",
        ),
        pytest.param(
            smtp_blackholed,
            "SMTP blackholed 35 s",
            "connections to the SMTP server hang, nothing answers, for 35 s",
            id="blackholed",
        ),
    ],
)
async def test_smtp_server_unreachable_during_a_burst(
    lab: FaultLab,
    baseline: Baseline,
    outage: Callable[[FaultLab], Awaitable[None]],
    scenario: str,
    fault: str,
) -> None:
    async def inject(lab: FaultLab) -> Recovery:
        await outage(lab)
        return Recovery(at=time.monotonic())

    figures = await run_burst(
        lab,
        scenario=scenario,
        fault=fault,
        inject=inject,
        baseline=baseline,
    )
    verdict(figures, lab)


async def broker_down(lab: FaultLab, seconds: float) -> Recovery:
    """A real stop of the node (not a cut connection), then a start on the same data."""
    stopping = time.monotonic()
    await asyncio.to_thread(lab.node.stop)
    down = time.monotonic()
    await asyncio.sleep(max(0.0, seconds - (down - stopping)))  # down this long: the fault
    await asyncio.to_thread(lab.node.start)
    back = time.monotonic()
    return Recovery(at=back, notes=[f"broker unreachable {back - stopping:.0f} s"])


async def test_broker_down_for_39_s_during_a_burst(lab: FaultLab, baseline: Baseline) -> None:
    async def inject(lab: FaultLab) -> Recovery:
        return await broker_down(lab, BROKER_DOWN_SECONDS)

    figures = await run_burst(
        lab,
        scenario="broker down 39 s",
        fault="the RabbitMQ node stopped, started again 39 s later on the same data",
        inject=inject,
        baseline=baseline,
    )
    verdict(figures, lab)


async def test_broker_restart_during_a_burst(lab: FaultLab, baseline: Baseline) -> None:
    async def inject(lab: FaultLab) -> Recovery:
        return await broker_down(lab, 0)

    figures = await run_burst(
        lab,
        scenario="broker restart",
        fault="the RabbitMQ node stopped and started again at once",
        inject=inject,
        baseline=baseline,
    )
    verdict(figures, lab)


# The database cut while requests write invitations.

REQUESTS = 10
PER_REQUEST = 20
HELD_SECONDS = 2.0  # blackholed first, so the requests in flight are stuck mid-transaction
CUT_SECONDS = 5.0


def answer_problem(answer: httpx.Response | BaseException) -> str | None:
    """What is wrong with an answer given while the database went away (None: nothing)."""
    if isinstance(answer, BaseException):
        return f"no answer: {type(answer).__name__}: {answer}"
    if answer.status_code == 202:
        return None
    if answer.status_code != 503:
        return f"answered {answer.status_code}: {answer.text[:200]}"
    if "application/json" not in answer.headers.get("content-type", ""):
        return f"503 not JSON ({answer.headers.get('content-type')})"
    if not answer.headers.get("retry-after", "").isdigit():
        return "503 without Retry-After"
    return None


async def test_database_cut_during_the_requests_that_invite(
    lab: FaultLab, baseline: Baseline
) -> None:
    """Each request is all or nothing: 202 with every address written, or a JSON 503 with
    Retry-After and none written. The admin then sends the refused requests again."""
    started = time.monotonic()
    everyone = addresses(lab.tag, REQUESTS * PER_REQUEST)
    batches = [everyone[i : i + PER_REQUEST] for i in range(0, len(everyone), PER_REQUEST)]
    requests = [asyncio.create_task(lab.invite(batch)) for batch in batches]
    # Once the first request has committed, the others are on their way through theirs.
    await asyncio.wait(requests, return_when=asyncio.FIRST_COMPLETED)
    await lab.postgres_proxy.blackhole()
    await asyncio.sleep(HELD_SECONDS)  # requests stuck mid-transaction this long: the fault
    await lab.postgres_proxy.cut()
    answers = await asyncio.gather(*requests, return_exceptions=True)
    during = await lab.invite([f"during.{lab.tag}@example.com"])
    await asyncio.sleep(CUT_SECONDS)  # the cut's length is the fault
    await lab.postgres_proxy.restore()
    recovery = Recovery(at=time.monotonic())

    for answer in [*answers, during]:
        if (problem := answer_problem(answer)) is not None:
            recovery.failures.append(problem)
    if during.status_code != 503:
        recovery.failures.append(f"a request while the database was cut got {during.status_code}")
    refused = [
        batch
        for batch, answer in zip(batches, answers, strict=True)
        if not isinstance(answer, httpx.Response) or answer.status_code != 202
    ]
    recovery.notes.append(f"{len(refused)} of {REQUESTS} requests refused by the cut (503)")
    if not refused:
        recovery.failures.append("the cut came after every request had finished: not tested")
    statuses = await written(lab)
    for batch in batches:
        present = sum(1 for address in batch if address in statuses)
        if present not in (0, len(batch)):
            recovery.failures.append(f"half-written request: {present} of {len(batch)} addresses")
    recovery.notes.append(
        f"{sum(1 for b in refused if b[0] in statuses)} refused requests had been committed"
    )
    # The admin sends the refused requests again, as the 503 asks.
    for batch in refused:
        if (problem := await resend(lab, batch)) is not None:
            recovery.failures.append(problem)
    figures = await conclude(
        lab,
        scenario="database cut during POST",
        fault=f"PostgreSQL blackholed {HELD_SECONDS:g} s then cut {CUT_SECONDS:g} s while "
        f"{REQUESTS} requests of {PER_REQUEST} invitations ran",
        invited={address.lower() for address in everyone},
        recovery=recovery,
        limit=baseline.limit,
        expected=Expectations(duplicates=IN_FLIGHT_WINDOW),
        started=started,
    )
    verdict(figures, lab)


async def resend(lab: FaultLab, batch: list[str], timeout: float = 60) -> str | None:
    """Send a refused request again until it is taken, honouring Retry-After on each 503 as
    a client should; what went wrong otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = await lab.invite(batch)
        if answer.status_code == 202:
            return None
        if (problem := answer_problem(answer)) is not None:
            return f"resending a refused request: {problem}"
        # Pacing, as a client honouring Retry-After waits: what the scenario checks.
        await asyncio.sleep(min(5.0, float(answer.headers["retry-after"])))
    return f"a refused request still refused after {timeout:g} s"


async def written(lab: FaultLab, timeout: float = 60) -> dict[str, str]:
    """The invitations as the API lists them once the database answers again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (statuses := await lab.statuses()) is not None:
            return statuses
        await asyncio.sleep(0.5)
    raise AssertionError(f"the invitations API did not answer again:\n{lab.log_tails()}")
