"""`make bench`: the figures of issue 12, measured on what a user runs.

The four services run as `make run` starts them (devtools/run.py's commands and defaults), on
a RabbitMQ vhost of their own, first with fresh SQLite files (the `make run` default), then
with fresh PostgreSQL databases; the SMTP server is a sink in its own process (postfix's
smtp-sink, or aiosmtpd where it is not installed). The ceilings (aiosmtplib, aio-pika) are
measured in the same run against the same sink and broker, and one table prints each figure
beside its ceiling with the ratio and the goal. Everything started is taken down at the end,
on failure and on Ctrl-C too: processes (by pid), the vhosts, the databases, the files.

    .venv/bin/python devtools/bench.py [--stages sqlite,postgresql] [--profile DIR]

--profile DIR attaches py-spy (20 s, non-blocking) to the mailer and invitations during P1 and
to the auth-listener during P3, writes speedscope files to DIR and prints their hotspots.
Numbers and the machine they came from: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools import bench_ceilings, bench_extras, bench_flows
from devtools.bench_infra import (
    Resources,
    SmtpSink,
    fresh_database,
    postgres_connections,
    private_vhost,
    start_smtp_sink,
)
from devtools.bench_profile import Profiler
from devtools.bench_report import StageFigures, machine, table
from devtools.bench_system import SERVICES, System, environment, sqlite_urls

INVITATIONS = 2000
PENDING_ACCOUNTS = 300
LOGINS_PER_SECOND = 200
ABSORBED_LOGINS = 10_000
STARTED = time.monotonic()
# Idle means after the start-up work (migrations, first heartbeats, declarations) is over.
SETTLE_SECONDS = 5


@dataclass(frozen=True)
class Options:
    stages: list[str]
    profile: Path | None
    scale_out: set[str]
    invitations: int = INVITATIONS
    accounts: int = PENDING_ACCOUNTS
    logins: int = ABSORBED_LOGINS


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--profile", type=Path, help="attach py-spy; write its files here")
    parser.add_argument(
        "--scale-out",
        default="postgresql",
        help="stages that also run P6 with a second mailer (replicas share a server database)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a tenth of the work: to try the bench, not to quote"
    )
    arguments = parser.parse_args()
    scale = 10 if arguments.quick else 1
    return Options(
        stages=[stage for stage in arguments.stages.split(",") if stage],
        profile=arguments.profile,
        scale_out=set(arguments.scale_out.split(",")),
        invitations=INVITATIONS // scale,
        accounts=PENDING_ACCOUNTS // scale,
        logins=ABSORBED_LOGINS // scale,
    )


def database_urls(stage: str, resources: Resources, folder: Path) -> dict[str, str]:
    if stage == "sqlite":
        return sqlite_urls(folder)
    return {name: fresh_database(resources, name.replace("-", "_")) for name in SERVICES}


def relay_database(stage: str, resources: Resources, folder: Path) -> str:
    if stage == "sqlite":
        return f"sqlite+aiosqlite:///{folder}/relay.db"
    return fresh_database(resources, "relay")


async def run_stage(
    stage: str, options: Options, resources: Resources, report: list[str]
) -> StageFigures:
    with resources.child() as own:
        folder = Path(tempfile.mkdtemp(prefix=f"bench-{stage}-"))
        own.defer(f"folder {folder}", lambda: shutil.rmtree(folder, ignore_errors=True))
        amqp_url = private_vhost(own)
        sink = start_smtp_sink(own)
        env = environment(amqp_url, database_urls(stage, own, folder), sink.port, folder / "keys")
        system = System(env, folder, own).start()
        profiler = Profiler(options.profile, own) if options.profile else None
        label = "SQLite" if stage == "sqlite" else "PostgreSQL"
        try:
            return await _measure(Stage(stage, label, options, system, sink, profiler, report))
        except BaseException:
            _print_log_tails(system)
            raise


@dataclass
class Stage:
    """One stage's running system and what it measures with."""

    key: str
    label: str
    options: Options
    system: System
    sink: SmtpSink
    profiler: Profiler | None
    report: list[str]

    def attach(self, *services: str) -> Callable[[], None]:
        """py-spy on these services, when the flow being profiled starts."""

        def attach() -> None:
            for name in services if self.profiler else ():
                assert self.profiler is not None
                self.profiler.attach(f"{self.key}-{name}", self.system.services[name].pid)

        return attach

    def profiled(self) -> None:
        self.report += self.profiler.finish() if self.profiler else []


async def _measure(stage: Stage) -> StageFigures:
    label, system = stage.label, stage.system
    _progress(f"{label}: services ready; idle memory")
    notes = (
        [f"{label}: at the start, {postgres_connections()}"] if stage.key == "postgresql" else []
    )
    await asyncio.sleep(SETTLE_SECONDS)
    idle = system.rss()
    flow, ceilings = await _whole_flow(stage)
    accounts, latency, logins = await _logins(stage)
    _progress(f"{label}: outbox relay in-process")
    relay = await bench_extras.relay_rate(
        system.env["AMQP_URL"], relay_database(stage.key, system.resources, system.folder)
    )
    figures = StageFigures(
        label, ceilings, flow, relay, logins, latency, idle, system.rss(), notes=notes
    )
    notes.append(
        f"{label}: SMTP sink {stage.sink.kind}; mails of {ceilings.mail_bytes} bytes in the "
        f"ceilings; P1 {flow.mails} mails received, {flow.duplicates} duplicates; "
        f"P2 answers {', '.join(f'{seconds:.2f}' for seconds in flow.answer_seconds)} s; "
        "P1 CPU per invitation: "
        + ", ".join(f"{name} {ms:.1f} ms" for name, ms in flow.cpu_ms_per_invitation.items())
        + "; P4 CPU per activation: "
        + ", ".join(f"{name} {ms:.1f} ms" for name, ms in latency.cpu_ms_per_activation.items())
    )
    if stage.key in stage.options.scale_out:
        # Last, and not fatal: the table so far is worth printing if these fail.
        try:
            figures.scaled = await _scale_out(stage)
            stage.report += [f"{label}: avatar uploads (issue 10)"]
            stage.report += await bench_extras.avatar_memory(system, next(iter(accounts.values())))
        except Exception as error:
            notes.append(f"{label}: P6 or the avatar check failed: {error!r}")
    notes.append(_errors_logged(label, system))
    return figures


async def _whole_flow(stage: Stage) -> tuple[bench_flows.FlowResult, bench_ceilings.Ceilings]:
    """P1 and P2, then the ceilings with mails of the size the mailer sent."""
    count = stage.options.invitations
    _progress(f"{stage.label}: P1/P2 whole flow, {count} invitations")
    flow = await bench_flows.invite_flow(
        stage.system,
        stage.sink,
        first=0,
        count=count,
        on_start=stage.attach("mailer", "invitations"),
    )
    stage.profiled()
    _progress(f"{stage.label}: ceilings (aiosmtplib, aio-pika)")
    ceilings = await bench_ceilings.measure(
        stage.system.env["AMQP_URL"], stage.sink.port, stage.sink.sample_size()
    )
    return flow, ceilings


async def _logins(
    stage: Stage,
) -> tuple[dict[str, str], bench_flows.LatencyResult, float]:
    """P4 first: its accounts, once active, are the active account P3 logs in with."""
    _progress(f"{stage.label}: P4 activation latency, {stage.options.accounts} pending accounts")
    accounts = await bench_flows.create_pending_accounts(stage.system, stage.options.accounts)
    latency = await bench_flows.activation_latency(stage.system, accounts, LOGINS_PER_SECOND)
    _progress(f"{stage.label}: P3 login absorption, {stage.options.logins} logins")
    logins = await bench_flows.absorb_logins(
        stage.system, next(iter(accounts)), stage.options.logins, stage.attach("auth-listener")
    )
    stage.profiled()
    return accounts, latency, logins


async def _scale_out(stage: Stage) -> bench_flows.FlowResult:
    """P6: the whole flow again (new addresses), with a second mailer on the same database."""
    _progress(f"{stage.label}: P6 whole flow with a second mailer")
    stage.system.add_mailer_replica()
    count = stage.options.invitations
    return await bench_flows.invite_flow(
        stage.system, stage.sink, first=count, count=count, on_start=_nothing
    )


def _errors_logged(label: str, system: System) -> str:
    """Errors the services logged: a figure measured through retries is not the same figure
    (e.g. a shared PostgreSQL out of connections)."""
    counts = {
        service.name: service.log.read_text(errors="replace").count("[error")
        for service in system.all()
    }
    found = ", ".join(f"{name} {count}" for name, count in counts.items() if count) or "none"
    return f"{label}: errors in the services' logs: {found}"


def _nothing() -> None:
    pass


def _progress(message: str) -> None:
    elapsed = time.monotonic() - STARTED
    print(f"... [{elapsed:4.0f} s] {message}", file=sys.stderr, flush=True)


def _print_log_tails(system: System) -> None:
    for service in system.all():
        lines = service.log.read_text(errors="replace").splitlines()[-15:]
        print(f"--- {service.name} (last lines of its log)", *lines, sep="\n", file=sys.stderr)


async def run(options: Options, resources: Resources) -> None:
    # `kill` (SIGTERM) ends the run as Ctrl-C does: through the clean-ups.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    header = f"Machine: {machine()}"
    _progress(header)
    report: list[str] = []
    stages = [await run_stage(stage, options, resources, report) for stage in options.stages]
    print(header)
    print(*(note for figures in stages for note in figures.notes), sep="\n")
    print()
    print(table(stages))
    if report:
        print()
        print(*report, sep="\n")


def main() -> int:
    options = parse_options()
    with Resources() as resources:
        try:
            asyncio.run(run(options, resources))
        except (KeyboardInterrupt, asyncio.CancelledError):
            print("interrupted: cleaning up", file=sys.stderr)
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
