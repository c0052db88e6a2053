"""The benchmark's SMTP sink where postfix's smtp-sink is not installed: aiosmtpd in a process
of its own, keeping each mail as one raw file (as `smtp-sink -d` does), so duplicates can be
counted by Message-ID.

    python -m devtools.bench_sink PORT FOLDER
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class KeepRaw:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        raw: bytes = envelope.original_content or envelope.content
        (self.folder / uuid.uuid4().hex).write_bytes(raw)
        return "250 OK"


async def serve(port: int, folder: Path) -> None:
    controller = Controller(KeepRaw(folder), hostname="127.0.0.1", port=port)
    controller.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    controller.stop()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), Path(sys.argv[2])))
