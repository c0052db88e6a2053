"""How a fault scenario runs: a burst of invitations, a fault once the mails are flowing, the
recovery, then the wait until everything has drained, and the figures of the issue's table."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tests.support.faults_report import Expectations, Figures, measure
from tests.support.faults_system import FINAL_STATUSES, IN_FLIGHT_WINDOW, FaultLab, addresses

# Invitations per scenario (FAULTS_BURST overrides it, e.g. for a quick local try).
BURST = int(os.environ.get("FAULTS_BURST", "200"))
# The fault comes once this many mails went out: the burst is then well under way.
MID_BATCH = max(1, BURST * 3 // 10)
# The baseline has no limit of its own; past this it counts as not drained.
BASELINE_CAP_SECONDS = 180.0
# How long past its limit a scenario is still watched, so the table shows how late it was.
OVERTIME_SECONDS = 30.0
POLL_SECONDS = 0.5

# Every scenario's figures, in the order they ran, for the summary table.
RESULTS: list[Figures] = []


@dataclass(frozen=True)
class Baseline:
    drain_seconds: float

    @property
    def limit(self) -> float:
        """The issue's limit on a drain after recovery: twice the baseline plus 15 s."""
        return 2 * self.drain_seconds + 15


@dataclass
class Recovery:
    """When the fault ended (time.monotonic()), and what the scenario noticed on the way."""

    at: float
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


Fault = Callable[[FaultLab], Awaitable[Recovery]]


async def mails_reach(lab: FaultLab, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(lab.smtp.handler.accepted) < count:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"only {len(lab.smtp.handler.accepted)} of {count} mails went out in {timeout}s "
                f"before the fault:\n{lab.log_tails()}"
            )
        await asyncio.sleep(0.05)


@dataclass
class Settled:
    drain_seconds: float | None  # from the recovery; None if not within the limit and overtime
    statuses: dict[str, str]
    depths: dict[str, int]
    # When every invitation had a final status, before the queues had emptied too.
    statuses_final_seconds: float | None = None


async def settle(
    lab: FaultLab, invited: set[str], since: float, limit: float | None, parked: int = 0
) -> Settled:
    """Wait until every invitation has a final status, every queue (parking queues aside) is
    empty and the ``parked`` messages expected are parked: a poison message published last
    may reach its queue after the burst has drained."""
    deadline = since + (BASELINE_CAP_SECONDS if limit is None else limit + OVERTIME_SECONDS)
    final_at: float | None = None
    while time.monotonic() < deadline:
        statuses = await lab.statuses()
        if statuses is not None and all(statuses.get(a) in FINAL_STATUSES for a in invited):
            final_at = final_at or time.monotonic() - since
            # Only now: each rabbitmqctl call costs this 2-core machine half a second of CPU.
            depths = await lab.queue_depths()
            if depths is not None and not _waiting(depths) and _parked(depths) >= parked:
                return Settled(time.monotonic() - since, statuses, depths, final_at)
        await asyncio.sleep(POLL_SECONDS)
    return Settled(None, await lab.statuses() or {}, await lab.queue_depths() or {}, final_at)


def _waiting(depths: dict[str, int]) -> int:
    return sum(count for name, count in depths.items() if not name.endswith(".parked"))


def _parked(depths: dict[str, int]) -> int:
    return sum(count for name, count in depths.items() if name.endswith(".parked"))


async def run_burst(
    lab: FaultLab,
    *,
    scenario: str,
    fault: str,
    inject: Fault,
    baseline: Baseline,
    trigger: int = MID_BATCH,
    expected: Expectations | None = None,
) -> Figures:
    """A burst of BURST invitations; `inject` breaks something once `trigger` mails went out,
    and returns when it is repaired."""
    started = time.monotonic()
    invited = await lab.invite_burst(addresses(lab.tag, BURST))
    assert len(invited) == BURST, f"only {len(invited)} of {BURST} invitations queued"
    await mails_reach(lab, trigger)
    recovery = await inject(lab)
    return await conclude(
        lab,
        scenario=scenario,
        fault=fault,
        invited=invited,
        recovery=recovery,
        limit=baseline.limit,
        expected=expected or Expectations(duplicates=IN_FLIGHT_WINDOW),
        started=started,
    )


async def conclude(
    lab: FaultLab,
    *,
    scenario: str,
    fault: str,
    invited: set[str],
    recovery: Recovery,
    limit: float | None,
    expected: Expectations,
    started: float,
) -> Figures:
    settled = await settle(lab, invited, recovery.at, limit, expected.parked)
    figures = measure(
        scenario=scenario,
        fault=fault,
        invited=invited,
        mails=lab.smtp.accepted,
        statuses=settled.statuses,
        depths=settled.depths,
        drain_seconds=settled.drain_seconds,
        drain_limit=limit,
        expected=expected,
    )
    figures.notes.extend(recovery.notes)
    if (
        settled.statuses_final_seconds is not None
        # Worth saying only when the queues took visibly longer than the statuses.
        and _or_forever(settled.drain_seconds) - settled.statuses_final_seconds > 1
    ):
        figures.notes.append(
            f"every invitation final {settled.statuses_final_seconds:.1f} s after recovery"
        )
    figures.notes_that_fail.extend(recovery.failures)
    figures.wall_seconds = time.monotonic() - started
    record(figures)
    return figures


def _or_forever(seconds: float | None) -> float:
    return float("inf") if seconds is None else seconds


def record(figures: Figures) -> None:
    RESULTS.append(figures)
    # Shown as it happens with -s; the whole table comes in the terminal summary.
    print(f"\n[faults] {figures.scenario}: {figures.problems or 'pass'} {figures}")


def verdict(figures: Figures, lab: FaultLab) -> None:
    """Fail the test with the figures and the services' last log lines."""
    if figures.problems:
        raise AssertionError(
            f"{figures.scenario}: {'; '.join(figures.problems)}\nfigures: {figures}\n"
            f"notes: {figures.notes}\nservice logs:\n{lab.log_tails(15)}"
        )
