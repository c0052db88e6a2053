"""The mailer's SMTP adapter against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import pytest

from mailer.adapters.smtp import SmtpSender
from mailer.settings import MailerSettings
from tests.support.auth import verifier_settings
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.integration


def message(number: int) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "team@example.com"
    mail["To"] = f"person{number}@example.com"
    mail["Subject"] = "Welcome"
    mail.set_content("Hello")
    return mail


async def test_no_more_sessions_are_open_at_once_than_smtp_max_connections(
    smtp_server: SmtpServer,
) -> None:
    smtp_server.handler.data_seconds = 0.2
    settings = MailerSettings(
        **verifier_settings(),
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_tls="none",
        smtp_max_connections=3,
    )
    sender = SmtpSender(settings)

    await asyncio.gather(*(sender.send(message(number)) for number in range(12)))

    assert len(smtp_server.messages) == 12
    assert smtp_server.handler.most_in_data == 3
