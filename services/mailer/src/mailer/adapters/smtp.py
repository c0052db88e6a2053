"""The only place in the system that talks SMTP."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage

import aiosmtplib
from opentelemetry import trace

from mailer.domain.model import PermanentSendError, TransientSendError
from mailer.service_layer.ports import AttemptOutcome
from mailer.settings import MailerSettings, SmtpSecurity

# A no-op unless tracing is on: then the send is the last span of an invitation's trace.
_tracer = trace.get_tracer(__name__)


# A reused session sends at most this many mails, then says QUIT: servers cap mails per session
# (Postfix's smtpd_client_message_rate_limit, providers' per-connection limits).
MAILS_PER_SESSION = 100
# An idle session older than this is closed rather than reused: servers drop idle clients (RFC
# 5321 asks them to wait at least 5 minutes; many wait less).
IDLE_SESSION_SECONDS = 60.0
# A session idle longer than this is checked with NOOP before a mail goes on it, so a mail is
# never written to a connection the server has already closed.
CHECK_AFTER_IDLE_SECONDS = 5.0


@dataclass
class _Session:
    client: aiosmtplib.SMTP
    mails: int = 0
    idle_since: float = field(default_factory=time.monotonic)


class SmtpSender:
    """Sends over a small pool of reused SMTP sessions: one handshake (and TLS, and login) per
    session, not per mail. A session that fails is dropped, never reused."""

    def __init__(self, settings: MailerSettings) -> None:
        if settings.smtp_host is None:
            raise ValueError("SMTP_HOST is not set")
        self._host = settings.smtp_host
        self._port = settings.smtp_port
        self._username = settings.smtp_username
        self._password = (
            settings.smtp_password.get_secret_value() if settings.smtp_password else None
        )
        self._security = settings.smtp_tls
        self._timeout = settings.smtp_timeout_seconds
        # Providers cap concurrent sessions per account; PREFETCH per queue could exceed it.
        self._sessions = asyncio.Semaphore(settings.smtp_max_connections)
        self._idle: list[_Session] = []  # most recently used last
        self._last_attempt: AttemptOutcome | None = None
        self._reachability_changed = asyncio.Event()
        # Resolved once, off the loop: aiosmtplib would otherwise call the blocking
        # socket.getfqdn() (a DNS lookup) on every connection.
        self._local_hostname: str | None = None

    @property
    def last_attempt(self) -> AttemptOutcome | None:
        return self._last_attempt

    @property
    def reachability_changed(self) -> asyncio.Event:
        return self._reachability_changed

    async def send(self, message: EmailMessage) -> None:
        reached = False
        try:
            with _tracer.start_as_current_span(
                "smtp send",
                kind=trace.SpanKind.CLIENT,
                attributes={"server.address": self._host, "server.port": self._port},
            ):
                await self._send(message)
            reached = True
        except PermanentSendError:
            reached = True  # the server answered; it refused this message
            raise
        except TransientSendError as error:
            reached = not error.server_unavailable
            raise
        finally:
            previous = self._last_attempt
            self._last_attempt = AttemptOutcome(reached_server=reached, at=datetime.now(UTC))
            if previous is None or previous.reached_server != reached:
                self._reachability_changed.set()

    async def close(self) -> None:
        """Say QUIT on every idle session (at shutdown)."""
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(session) for session in idle))

    async def _send(self, message: EmailMessage) -> None:
        try:
            async with self._sessions:
                session = await self._checkout()
                try:
                    await session.client.send_message(message)
                except BaseException:
                    session.client.close()  # its state is unknown: never reuse it
                    raise
                await self._checkin(session)
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refusal.code for refusal in error.recipients]
            reason = "; ".join(f"{r.code} {r.message}" for r in error.recipients)
            raise _by_code(min(codes, default=550), f"recipient refused: {reason}") from None
        except aiosmtplib.SMTPResponseException as error:
            raise _by_code(error.code, f"SMTP {error.code}: {error.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise TransientSendError(
                f"{type(error).__name__}: {error}", server_answered=False
            ) from None

    async def _checkout(self) -> _Session:
        while self._idle:
            session = self._idle.pop()
            idle_for = time.monotonic() - session.idle_since
            if idle_for > IDLE_SESSION_SECONDS or not session.client.is_connected:
                await _quit(session)
            elif idle_for <= CHECK_AFTER_IDLE_SECONDS or await _still_open(session):
                return session
        return await self._connect()

    async def _connect(self) -> _Session:
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            use_tls=self._security is SmtpSecurity.TLS,
            start_tls=self._security is SmtpSecurity.STARTTLS,
            timeout=self._timeout,
            local_hostname=self._local_hostname,
        )
        await client.connect()
        return _Session(client)

    async def _checkin(self, session: _Session) -> None:
        session.mails += 1
        if session.mails >= MAILS_PER_SESSION:
            await _quit(session)
            return
        session.idle_since = time.monotonic()
        self._idle.append(session)


async def _still_open(session: _Session) -> bool:
    try:
        await session.client.noop()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        session.client.close()
        return False
    return True


async def _quit(session: _Session) -> None:
    try:
        await session.client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        session.client.close()


def _by_code(code: int, reason: str) -> TransientSendError | PermanentSendError:
    return PermanentSendError(reason) if code >= 500 else TransientSendError(reason, code=code)
