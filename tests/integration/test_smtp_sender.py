"""The mailer's SMTP adapter against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import pytest

from mailer.adapters import smtp
from mailer.adapters.smtp import SmtpSender
from mailer.domain.model import TransientSendError
from mailer.settings import MailerSettings
from tests.support.auth import verifier_settings
from tests.support.smtp import SmtpServer, free_port
from tests.support.tcp_proxy import TcpProxy

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


async def test_a_change_of_reachability_is_signalled_once(smtp_server: SmtpServer) -> None:
    def sender_to(port: int) -> SmtpSender:
        return SmtpSender(
            MailerSettings(
                **verifier_settings(), smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none"
            )
        )

    reachable = sender_to(smtp_server.port)
    await reachable.send(message(1))
    assert reachable.reachability_changed.is_set()  # the first outcome is news
    reachable.reachability_changed.clear()
    await reachable.send(message(2))
    assert not reachable.reachability_changed.is_set()  # the same again is not

    unreachable = sender_to(free_port())
    with pytest.raises(TransientSendError):
        await unreachable.send(message(3))
    assert unreachable.reachability_changed.is_set()
    assert unreachable.last_attempt is not None and not unreachable.last_attempt.reached_server


def sender_for(port: int) -> SmtpSender:
    return SmtpSender(
        MailerSettings(
            **verifier_settings(), smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none"
        )
    )


async def test_mails_in_a_row_share_one_session_up_to_its_limit(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smtp, "MAILS_PER_SESSION", 3)
    sender = sender_for(smtp_server.port)
    for number in range(7):
        await sender.send(message(number))
    await sender.close()

    assert len(smtp_server.messages) == 7
    ports = [peer[1] for peer in smtp_server.handler.peers]
    assert [ports.count(port) for port in dict.fromkeys(ports)] == [3, 3, 1]


async def test_a_session_the_server_dropped_while_idle_is_not_used_for_the_next_mail(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smtp, "CHECK_AFTER_IDLE_SECONDS", 0.0)
    proxy = await TcpProxy("127.0.0.1", smtp_server.port).start()
    sender = sender_for(proxy.port)
    await sender.send(message(1))
    await proxy.cut()  # drops the idle session, as a server restart would
    await proxy.restore()

    await sender.send(message(2))  # checked with NOOP, found dead, replaced

    assert [m["To"] for m in smtp_server.messages] == ["person1@example.com", "person2@example.com"]
    assert len({peer[1] for peer in smtp_server.handler.peers}) == 2


async def test_a_session_that_failed_is_never_reused(smtp_server: SmtpServer) -> None:
    smtp_server.handler.scripted_replies.append("451 4.3.0 try again later")
    sender = sender_for(smtp_server.port)
    with pytest.raises(TransientSendError):
        await sender.send(message(1))
    await sender.send(message(2))
    assert [m["To"] for m in smtp_server.messages] == ["person2@example.com"]
    assert len({peer[1] for peer in smtp_server.handler.peers}) == 2
