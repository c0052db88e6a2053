"""An SMTP sink for the fault suite: it records every accepted mail with its Message-ID, and can
be told to answer 421 to every session, 550 to chosen recipients, or to stop listening."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.smtp import free_port

TRY_LATER = "421 4.3.2 Service not available, closing transmission channel"
NO_SUCH_USER = "550 5.1.1 No such user here"


@dataclass(frozen=True)
class AcceptedMail:
    message_id: str
    recipient: str
    at: float  # time.monotonic()


class FaultyHandler:
    """aiosmtpd hooks. They run on the controller's thread; the test reads what they record."""

    def __init__(self) -> None:
        self.accepted: list[AcceptedMail] = []
        self.refusals: Counter[str] = Counter()  # reply code -> how many times given
        # Every session's MAIL FROM gets this reply while set (e.g. TRY_LATER).
        self.refuse_sessions_with: str | None = None
        # RCPT TO of these addresses (lower case) always gets NO_SUCH_USER.
        self.unknown_recipients: frozenset[str] = frozenset()
        # Called after a mail is recorded, before the 250 goes back (e.g. to kill the client).
        self.after_accept: Callable[[AcceptedMail], None] | None = None
        self._lock = threading.Lock()

    async def handle_MAIL(  # noqa: N802
        self, _server: Any, _session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if (reply := self.refuse_sessions_with) is not None:
            self._count_refusal(reply)
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, _server: Any, _session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.lower() in self.unknown_recipients:
            self._count_refusal(NO_SUCH_USER)
            return NO_SUCH_USER
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        headers = BytesHeaderParser().parsebytes(envelope.original_content or envelope.content)
        mail = AcceptedMail(
            message_id=str(headers.get("Message-ID", "")).strip(),
            recipient=str(headers.get("To", "")).strip().lower(),
            at=time.monotonic(),
        )
        with self._lock:
            self.accepted.append(mail)
        if self.after_accept is not None:
            self.after_accept(mail)
        return "250 OK"

    def _count_refusal(self, reply: str) -> None:
        with self._lock:
            self.refusals[reply[:3]] += 1


class FaultySmtpSink:
    def __init__(self) -> None:
        self.handler = FaultyHandler()
        self.port = free_port()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.listening = False

    @property
    def accepted(self) -> list[AcceptedMail]:
        return list(self.handler.accepted)

    def start(self) -> FaultySmtpSink:
        self._controller.start()
        self.listening = True
        return self

    def stop_listening(self) -> None:
        """Close the listening socket (new connections are refused), as a server that is down."""
        if self.listening:
            self._controller.stop()
            self.listening = False

    def listen_again(self) -> None:
        if not self.listening:
            self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
            self.start()

    def stop(self) -> None:
        self.stop_listening()
