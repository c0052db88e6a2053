"""The only place in the system that talks SMTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.message import EmailMessage

import aiosmtplib
from opentelemetry import trace

from mailer.domain.model import PermanentSendError, TransientSendError
from mailer.service_layer.unit_of_work import AttemptOutcome
from mailer.settings import MailerSettings, SmtpSecurity

# A no-op unless tracing is on: then the send is the last span of an invitation's trace.
_tracer = trace.get_tracer(__name__)


class SmtpSender:
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
        self._last_attempt: AttemptOutcome | None = None
        self._reachability_changed = asyncio.Event()

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
            reached = error.server_answered
            raise
        finally:
            previous = self._last_attempt
            self._last_attempt = AttemptOutcome(reached_server=reached, at=datetime.now(UTC))
            if previous is None or previous.reached_server != reached:
                self._reachability_changed.set()

    async def _send(self, message: EmailMessage) -> None:
        try:
            async with self._sessions:
                _errors, _response = await aiosmtplib.send(
                    message,
                    hostname=self._host,
                    port=self._port,
                    username=self._username,
                    password=self._password,
                    use_tls=self._security is SmtpSecurity.TLS,
                    start_tls=self._security is SmtpSecurity.STARTTLS,
                    timeout=self._timeout,
                )
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


def _by_code(code: int, reason: str) -> TransientSendError | PermanentSendError:
    return PermanentSendError(reason) if code >= 500 else TransientSendError(reason)
