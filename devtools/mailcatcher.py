"""A development SMTP server that keeps every message as a .eml file, so you can open an
invitation and follow its link. Never use it in production: it accepts anything."""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import signal
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class SaveToFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        raw: bytes = envelope.original_content or envelope.content
        stem = self.folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        stem.with_suffix(".eml").write_bytes(raw)
        stem.with_suffix(".txt").write_text(readable(raw))
        print(f"mail for {', '.join(envelope.rcpt_tos)} saved as {stem}.eml (and .txt)", flush=True)
        return "250 Message accepted for delivery"


def readable(raw: bytes) -> str:
    """Headers and the decoded plain-text part: links intact, no quoted-printable breaks."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    headers = "".join(
        f"{name}: {message[name]}\n" for name in ("From", "To", "Subject", "Date") if message[name]
    )
    text = message.get_body(preferencelist=("plain",))
    return headers + "\n" + (str(text.get_content()) if text is not None else "(no text part)\n")


class Discard:
    """For benchmarks: accept and forget."""

    async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:  # noqa: N802
        return "250 OK"


async def serve(host: str, port: int, folder: Path | None) -> None:
    handler = SaveToFolder(folder) if folder else Discard()
    controller = Controller(handler, hostname=host, port=port)
    controller.start()
    print(
        f"development mail catcher on {host}:{port}, saving to {folder or 'nowhere'}/", flush=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--folder", type=Path, default=Path("var/mail"))
    parser.add_argument("--discard", action="store_true", help="keep nothing (benchmarks)")
    arguments = parser.parse_args()
    asyncio.run(
        serve(arguments.host, arguments.port, None if arguments.discard else arguments.folder)
    )


if __name__ == "__main__":
    main()
