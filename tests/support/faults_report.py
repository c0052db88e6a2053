"""What one fault scenario measured, how it is judged against issue 11's criteria, and the table
the suite prints (and writes to var/faults/report.md)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.support.faults_smtp import AcceptedMail

REPORT_FOLDER = Path(__file__).resolve().parents[2] / "var" / "faults"


@dataclass(frozen=True)
class Expectations:
    """What a scenario allows: the addresses the SMTP server refuses for good (they must end
    `failed`), the messages it injected that must be parked, how many duplicate mails."""

    permanent: frozenset[str] = frozenset()
    parked: int = 0
    duplicates: int = 0


@dataclass
class Figures:
    scenario: str
    fault: str
    invited: int
    unique_mails: int
    duplicate_mails: int
    # Recipients who got mails under more than one Message-ID: a resend that receivers cannot
    # recognise as one.
    renamed_resends: int
    statuses: dict[str, int]
    lost: int
    failed_transient: int
    failed_permanent: int
    parked: int
    drain_seconds: float | None  # None: not drained while the suite waited
    drain_limit: float | None  # None: the baseline itself
    expected: Expectations = field(default_factory=Expectations)
    notes: list[str] = field(default_factory=list)
    # Scenario-specific checks that failed (e.g. an answer that was not a JSON 503).
    notes_that_fail: list[str] = field(default_factory=list)
    leftovers: dict[str, int] = field(default_factory=dict)  # queues not empty at the end
    wall_seconds: float = 0.0

    @property
    def problems(self) -> list[str]:
        """Every way the scenario missed the issue's criteria; empty when it passed."""
        found = []
        if self.lost:
            found.append(f"{self.lost} lost")
        if self.failed_transient:
            found.append(f"{self.failed_transient} failed because of a transient fault")
        if self.failed_permanent < len(self.expected.permanent):
            found.append(
                f"{len(self.expected.permanent) - self.failed_permanent} refused for good "
                "but not failed"
            )
        if self.parked > self.expected.parked:
            found.append(f"{self.parked - self.expected.parked} parked (need a manual replay)")
        if self.parked < self.expected.parked:
            found.append(f"{self.expected.parked - self.parked} poison messages not parked")
        if self.duplicate_mails > self.expected.duplicates:
            found.append(
                f"{self.duplicate_mails} duplicates > in-flight window {self.expected.duplicates}"
            )
        if self.renamed_resends:
            found.append(f"{self.renamed_resends} resent with a different Message-ID")
        if self.drain_seconds is None:
            found.append("did not drain")
        elif self.drain_limit is not None and self.drain_seconds > self.drain_limit:
            found.append(f"drain {self.drain_seconds:.1f}s > limit {self.drain_limit:.1f}s")
        if self.leftovers:
            found.append(f"messages left in {', '.join(sorted(self.leftovers))}")
        found.extend(self.notes_that_fail)
        return found


def measure(
    *,
    scenario: str,
    fault: str,
    invited: set[str],
    mails: Iterable[AcceptedMail],
    statuses: dict[str, str],
    depths: dict[str, int],
    drain_seconds: float | None,
    drain_limit: float | None,
    expected: Expectations,
) -> Figures:
    mails = list(mails)
    message_ids = {mail.message_id for mail in mails}
    ids_by_recipient: dict[str, set[str]] = {}
    for mail in mails:
        ids_by_recipient.setdefault(mail.recipient, set()).add(mail.message_id)
    mailed = set(ids_by_recipient)
    final = {address: statuses.get(address, "missing") for address in invited}
    failed = {address for address, status in final.items() if status == "failed"}
    permanent_failed = failed & expected.permanent
    return Figures(
        scenario=scenario,
        fault=fault,
        invited=len(invited),
        unique_mails=len(message_ids),
        duplicate_mails=len(mails) - len(message_ids),
        renamed_resends=sum(1 for ids in ids_by_recipient.values() if len(ids) > 1),
        statuses=dict(sorted(Counter(final.values()).items())),
        lost=len(invited - mailed - permanent_failed),
        failed_transient=len(failed - expected.permanent),
        failed_permanent=len(permanent_failed - mailed),
        parked=sum(count for name, count in depths.items() if name.endswith(".parked")),
        drain_seconds=drain_seconds,
        drain_limit=drain_limit,
        expected=expected,
        leftovers={
            name: count for name, count in depths.items() if count and not name.endswith(".parked")
        },
    )


HEADER = (
    "| scenario | fault | invited | unique mails | duplicate mails (allowed) | final statuses "
    "| lost | failed (transient) | parked (expected) | drain after recovery (limit) | result |"
)
RULE = "|---|---|--:|--:|--:|---|--:|--:|--:|--:|---|"


def row(figures: Figures) -> str:
    statuses = ", ".join(f"{name} {count}" for name, count in figures.statuses.items())
    drain = "not drained" if figures.drain_seconds is None else f"{figures.drain_seconds:.1f} s"
    limit = "baseline" if figures.drain_limit is None else f"{figures.drain_limit:.1f} s"
    problems = figures.problems
    verdict = "pass" if not problems else "FAIL: " + "; ".join(problems)
    return (
        f"| {figures.scenario} | {figures.fault} | {figures.invited} | {figures.unique_mails} "
        f"| {figures.duplicate_mails} ({figures.expected.duplicates}) | {statuses} "
        f"| {figures.lost} | {figures.failed_transient} "
        f"| {figures.parked} ({figures.expected.parked}) | {drain} ({limit}) | {verdict} |"
    )


def table(results: Iterable[Figures]) -> list[str]:
    results = list(results)
    notes = [
        f"- {figures.scenario}: {'; '.join(figures.notes)}" for figures in results if figures.notes
    ]
    return [HEADER, RULE, *(row(figures) for figures in results), "", *notes]


def save(results: list[Figures]) -> Path:
    REPORT_FOLDER.mkdir(parents=True, exist_ok=True)
    (REPORT_FOLDER / "report.json").write_text(
        json.dumps(
            [asdict(figures) | {"problems": figures.problems} for figures in results],
            indent=2,
            default=sorted,
        )
    )
    path = REPORT_FOLDER / "report.md"
    path.write_text("\n".join(table(results)) + "\n")
    return path
