"""A real SMTP server (aiosmtpd) that keeps what it receives, and can be told to refuse."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class RecordingHandler:
    messages: list[EmailMessage] = field(default_factory=list)
    # Replies to give to the next DATA commands instead of accepting, e.g. "451 try later".
    scripted_replies: list[str] = field(default_factory=list)
    # Seconds each DATA takes, to hold sessions open; and the most sessions seen in DATA at once.
    data_seconds: float = 0.0
    in_data: int = 0
    most_in_data: int = 0
    # The client's address and port of each DATA: one port per SMTP session.
    peers: list[Any] = field(default_factory=list)

    async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.peers.append(session.peer)
        self.in_data += 1
        self.most_in_data = max(self.most_in_data, self.in_data)
        try:
            await asyncio.sleep(self.data_seconds)
            return self._reply(envelope)
        finally:
            self.in_data -= 1

    def _reply(self, envelope: Any) -> str:
        if self.scripted_replies:
            return self.scripted_replies.pop(0)
        parsed = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=email.policy.default
        )
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class SmtpServer:
    def __init__(self) -> None:
        self.handler = RecordingHandler()
        self.port = free_port()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[EmailMessage]:
        return self.handler.messages

    @property
    def environment(self) -> dict[str, str]:
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.port), "SMTP_TLS": "none"}

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
