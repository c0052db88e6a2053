"""py-spy attached to running services (`make bench` with --profile DIR): a speedscope file per
service and run, and a summary of where the samples fall.

py-spy pauses the process for each sample (100 a second, microseconds each): its
--nonblocking mode reads stacks while they change, and counted waits as work. Samples of a
thread waiting (in epoll, on a queue or a lock) are counted apart, so the percentages are of
the time spent working; a thread in a syscall (socket.send, sqlite3 running a statement or
waiting on the file lock) counts as working, since py-spy sees no Python frame beneath it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.bench_infra import BIN, Resources

SAMPLES_PER_SECOND = 100
TOP = 12
# Leaf frames that are a thread waiting, not working (py-spy's own idle detection misses some).
IDLE_LEAVES = (
    "EpollSelector.select (",
    # aiosqlite's thread waiting for its next query (tx.get()); line 63 runs it, so it counts.
    "_connection_worker_thread (aiosqlite/core.py:59)",
    "Condition.wait (",
    "_worker (concurrent/futures/thread.py",  # an executor thread waiting for work
    "WorkerThread.run (anyio",
)
STDLIB = re.compile(r"^.*/lib/python3\.\d+/")


def find_py_spy() -> str:
    found = (
        os.environ.get("BENCH_PY_SPY")
        or shutil.which("py-spy")
        or shutil.which("py-spy", path=str(BIN))
    )
    if not found:
        raise SystemExit(
            "--profile needs py-spy: `uv pip install --python .venv/bin/python py-spy`, or set "
            "BENCH_PY_SPY to its path"
        )
    return found


@dataclass
class Profiler:
    folder: Path
    resources: Resources
    seconds: int = 20

    def __post_init__(self) -> None:
        self.binary = find_py_spy()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.running: list[tuple[subprocess.Popen[bytes], Path]] = []

    def attach(self, label: str, pid: int) -> None:
        output = self.folder / f"prof-{label}.speedscope.json"
        command = [
            self.binary,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(self.seconds),
            "--rate",
            str(SAMPLES_PER_SECOND),
            "--format",
            "speedscope",
            "--output",
            str(output),
        ]
        process = self.resources.spawn(f"py-spy {label}", command, log=output.with_suffix(".log"))
        self.running.append((process, output))

    def finish(self) -> list[str]:
        """Wait for every recording; the summary of each."""
        lines: list[str] = []
        for process, output in self.running:
            process.wait(timeout=self.seconds + 60)
            if output.exists():
                lines += summarize(output, self.seconds)
            else:
                lines.append(f"{output.name}: py-spy wrote nothing (see {output.stem}.log)")
        self.running.clear()
        return lines


def summarize(path: Path, seconds: int) -> list[str]:
    """Where the busy time went; speedscope weights are seconds of samples, all threads."""
    document = json.loads(path.read_text())
    frames = document["shared"]["frames"]
    self_time: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    idle = 0.0
    for profile in document["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if not stack:
                continue
            leaf = frames[stack[-1]]
            if _label(leaf).startswith(IDLE_LEAVES):
                idle += weight
                continue
            threads[_thread(profile["name"])] += weight
            self_time[_label(leaf)] += weight
            packages[_package(leaf)] += weight
            for name in {_label(frames[index]) for index in stack if _ours(frames[index])}:
                inclusive[name] += weight
    total = sum(threads.values())
    busy = ", ".join(f"{name} {weight:.1f} s" for name, weight in threads.most_common(3))
    lines = [
        f"{path.name}: {total:.1f} thread-seconds working in {seconds} s ({busy}); "
        f"{idle:.1f} waiting"
    ]
    lines += _top("self time by package", packages, total)
    lines += _top("self time by function", self_time, total)
    lines += _top("inclusive time, our code", inclusive, total)
    return lines


def _thread(name: str) -> str:
    """`Thread 8123 "MainThread"` -> MainThread; `"Thread-4 (_connection_worker_thread)"` ->
    _connection_worker_thread: threads of one kind (aiosqlite's, one per connection) together."""
    quoted = name.split('"')[1] if name.count('"') >= 2 else ""
    if "(" in quoted:
        return quoted.split("(", 1)[1].rstrip(")")
    return quoted or "unnamed threads"


def _top(title: str, counts: Counter[str], total: float) -> list[str]:
    if not total:
        return []
    return [f"  {title}:"] + [
        f"    {weight / total:6.1%}  {name}" for name, weight in counts.most_common(TOP)
    ]


def _label(frame: dict[str, Any]) -> str:
    return f"{frame['name']} ({_short(frame.get('file', '?'))}:{frame.get('line', '?')})"


def _short(file: str) -> str:
    for marker in ("site-packages/", "/src/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return STDLIB.sub("", file)


def _package(frame: dict[str, Any]) -> str:
    """The top-level package (or stdlib module) a frame's code belongs to."""
    file: str = frame.get("file", "?")
    prefix = "stdlib:" if STDLIB.match(file) and "site-packages/" not in file else ""
    return prefix + _short(file).split("/", 1)[0].removesuffix(".py")


def _ours(frame: dict[str, Any]) -> bool:
    """Frames of the services and shared/, less the entry point every stack starts with."""
    file: str = frame.get("file", "")
    entry = file.endswith("__main__.py") or frame.get("name") == "run_cli"
    return "/src/" in file and "site-packages" not in file and not entry
