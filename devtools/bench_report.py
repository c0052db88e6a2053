"""The one table `make bench` prints: each figure beside its ceiling, the ratio, and the goal
of issue 12 (Markdown, so it can go into docs/performance.md as printed)."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from devtools.bench_ceilings import Ceilings
from devtools.bench_flows import FlowResult, LatencyResult

P5_RSS_GOAL_MB = 120.0
NONE = "-"  # an empty cell
P5_GROWTH_GOAL = 0.10


@dataclass(frozen=True)
class Row:
    figure: str
    measured: str
    ceiling: str = NONE
    ratio: str = NONE
    goal: str = NONE
    met: bool | None = None

    def cells(self, stage: str) -> list[str]:
        verdict = {True: "yes", False: "**no**", None: NONE}[self.met]
        return [stage, self.figure, self.measured, self.ceiling, self.ratio, self.goal, verdict]


@dataclass
class StageFigures:
    """Everything measured in one stage (SQLite or PostgreSQL)."""

    name: str
    ceilings: Ceilings
    flow: FlowResult
    relay: float
    logins: float
    latency: LatencyResult
    idle_rss: dict[str, float]
    after_rss: dict[str, float]
    scaled: FlowResult | None = None
    notes: list[str] = field(default_factory=list)


def ratio_row(
    figure: str,
    measured: float,
    unit: str,
    ceiling: tuple[str, float],
    goal: float | None,
    *,
    at_most: bool = False,
) -> Row:
    """`measured` against `ceiling` (label, value); the goal is a bound on their ratio."""
    label, value = ceiling
    ratio = measured / value
    if goal is None:
        goal_text, met = NONE, None
    else:
        goal_text = f"{'≤' if at_most else '≥'} {goal}"
        met = ratio <= goal if at_most else ratio >= goal
    return Row(
        figure,
        f"{measured:,.{_digits(measured)}f} {unit}",
        f"{label}: {value:,.{_digits(value)}f} {unit}",
        f"{ratio:.2f}",
        goal_text,
        met,
    )


def _digits(value: float) -> int:
    return 2 if value < 10 else 0


def rows(figures: StageFigures) -> list[Row]:
    table = [
        *_flow_rows(figures),
        *_messaging_rows(figures),
        _latency_row(figures.latency),
        *_memory_rows(figures.idle_rss, figures.after_rss),
    ]
    if figures.scaled is not None:
        table.append(_scale_row(figures.flow, figures.scaled))
    return table


def _flow_rows(figures: StageFigures) -> list[Row]:
    c, flow = figures.ceilings, figures.flow
    return [
        ratio_row("P1 whole flow", flow.rate, "/s", ("aiosmtplib, 8 reused", c.smtp_pooled), 0.6),
        ratio_row("P1 vs a serial sender", flow.rate, "/s", ("new conn/mail", c.smtp_serial), None),
        ratio_row(
            "P2 500-address invite answer (slowest of 4)",
            max(flow.answer_seconds),
            "s",
            ("serial sender, 500 mails", c.serial_seconds_for_500),
            0.1,
            at_most=True,
        ),
    ]


def _messaging_rows(figures: StageFigures) -> list[Row]:
    pipelined = ("confirms, 256 in flight", figures.ceilings.publish_pipelined)
    return [
        ratio_row("outbox relay (in-process)", figures.relay, "/s", pipelined, 0.6),
        ratio_row(
            "(reference) confirms awaited one at a time",
            figures.ceilings.publish_serial,
            "/s",
            pipelined,
            None,
        ),
        ratio_row(
            "P3 login absorption",
            figures.logins,
            "/s",
            ("consume+ack, prefetch 256", figures.ceilings.consume),
            0.4,
        ),
    ]


def _latency_row(latency: LatencyResult) -> Row:
    return Row(
        f"P4 activation latency, {latency.accounts} accounts at 200 logins/s",
        f"p50 {latency.p50_ms:,.0f} ms, p99 {latency.p99_ms:,.0f} ms (max {latency.max_ms:,.0f})",
        goal="p99 ≤ 250 ms",
        met=latency.p99_ms <= 250,
    )


def _memory_rows(idle: dict[str, float], after: dict[str, float]) -> list[Row]:
    found = []
    for name, before in idle.items():
        now = after.get(name, before)
        growth = now / before - 1
        found.append(
            Row(
                f"P5 RSS {name}, idle → after the runs",
                f"{before:.0f} → {now:.0f} MB",
                ratio=f"{growth:+.0%}",
                goal=f"≤ {P5_RSS_GOAL_MB:.0f} MB, ≤ +{P5_GROWTH_GOAL:.0%}",
                met=before <= P5_RSS_GOAL_MB and growth <= P5_GROWTH_GOAL,
            )
        )
    return found


def _scale_row(single: FlowResult, double: FlowResult) -> Row:
    return Row(
        "P6 whole flow with 2 mailers",
        f"{double.rate:,.1f} /s, {double.mails} mails, {double.duplicates} duplicates",
        f"1 mailer: {single.rate:,.1f} /s, {single.duplicates} duplicates",
        f"{double.rate / single.rate:.2f}",
        "no duplicates",
        double.duplicates == 0 and single.duplicates == 0,
    )


def table(stages: list[StageFigures]) -> str:
    header = ["stage", "figure", "measured", "ceiling (same run)", "ratio", "goal", "met"]
    lines = [_line(header), _line(["---"] * len(header))]
    for stage in stages:
        lines += [_line(row.cells(stage.name)) for row in rows(stage)]
    return "\n".join(lines)


def _line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def machine() -> str:
    """nproc, CPU model, RAM and the load when the run started: the numbers' context."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({model}), {memory_kb / 1024 / 1024:.1f} GiB RAM, "
        f"Python {platform.python_version()}, load average at start {load}"
    )
