"""The mailer's rules, with fakes: rendering, escaping, and what each SMTP outcome leads to."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from mailer.domain.model import Email, PermanentSendError, TransientSendError
from mailer.domain.rendering import InvitationEmail, build_message, render_invitation
from mailer.service_layer import services
from mailer.service_layer.unit_of_work import EmailRepository, MailerUnitOfWork
from onboarding_shared.messaging.consumer import Delivery
from tests.support.factories import invitation_requested
from tests.support.fake_mailer import ScriptedSender
from tests.support.fakes import FakeMessagingUnitOfWork

EXPIRES = datetime(2030, 5, 17, 9, 30, tzinfo=UTC)


def invitation(**overrides: object) -> InvitationEmail:
    values: dict[str, object] = {
        "recipient": "ada@example.com",
        "workspace_name": "Acme",
        "join_url": "https://chat.acme.test/join/tok123",
        "expires_at": EXPIRES,
        **overrides,
    }
    return InvitationEmail(**values)  # type: ignore[arg-type]


def test_the_invitation_says_welcome_and_links_join_chat_in_both_parts() -> None:
    rendered = render_invitation(invitation())
    assert rendered.subject == "Welcome to Acme"
    assert 'href="https://chat.acme.test/join/tok123"' in rendered.html
    assert ">Join Chat</a>" in rendered.html
    assert "Join Chat: https://chat.acme.test/join/tok123" in rendered.text
    assert "May 17, 2030" in rendered.text and "May 17, 2030" in rendered.html


def test_every_value_is_escaped_in_html() -> None:
    rendered = render_invitation(
        invitation(
            workspace_name="<b>Acme</b>", inviter_name="<script>x</script>", message="<img src=x>"
        )
    )
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "<img src=x>" not in rendered.html and "&lt;img src=x&gt;" in rendered.html
    assert "<b>Acme</b>" not in rendered.html


def test_a_link_that_is_not_a_web_link_is_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        render_invitation(invitation(join_url="javascript:alert(1)"))


def test_no_header_can_be_injected_through_the_workspace_name_or_recipient() -> None:
    rendered = render_invitation(invitation(workspace_name="Acme\r\nBcc: victim@example.com"))
    message = build_message(rendered, sender="Acme <team@acme.test>", recipient="ada@example.com")
    assert message["Bcc"] is None
    assert message["Subject"] == "Welcome to Acme Bcc: victim@example.com"
    with pytest.raises(ValueError):
        build_message(rendered, sender="team@acme.test", recipient="ada@example.com\r\nBcc: x@y.z")


def test_the_message_has_text_and_html_alternatives() -> None:
    message = build_message(
        render_invitation(invitation()), sender="team@acme.test", recipient="ada@example.com"
    )
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Message-ID"].endswith("@acme.test>")


class FakeEmails(EmailRepository):
    def __init__(self) -> None:
        self.by_event: dict[uuid.UUID, Email] = {}

    async def add_if_absent(self, email: Email) -> None:
        self.by_event.setdefault(email.source_event_id, email)

    async def lock_for_event(self, source_event_id: uuid.UUID) -> Email | None:
        return self.by_event.get(source_event_id)


class FakeUnitOfWork(FakeMessagingUnitOfWork, MailerUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.emails = FakeEmails()


FIRST = Delivery(attempt=1, max_attempts=3, routing_key="invitation.requested.v1")
LAST = Delivery(attempt=3, max_attempts=3, routing_key="invitation.requested.v1")


def outgoing() -> services.OutgoingEmail:
    return services.invitation_email(
        invitation_requested("ada@example.com"), sender="team@acme.test"
    )


async def test_an_email_is_sent_once_even_when_its_event_comes_twice() -> None:
    uow, sender, email = FakeUnitOfWork(), ScriptedSender(), outgoing()
    await services.deliver(uow, sender, email, FIRST)
    await services.deliver(uow, sender, email, FIRST)
    assert len(sender.sent) == 1
    [sent] = uow.events("EmailSent")
    assert sent.data.attempts == 1 and sent.data.recipient == "ada@example.com"


async def test_a_transient_failure_raises_for_a_retry_and_remembers_the_attempt() -> None:
    uow, email = FakeUnitOfWork(), outgoing()
    with pytest.raises(TransientSendError):
        await services.deliver(uow, ScriptedSender(TransientSendError("451 later")), email, FIRST)
    assert uow.published == []
    await services.deliver(uow, ScriptedSender(), email, Delivery(2, 3, "k"))
    [sent] = uow.events("EmailSent")
    assert sent.data.attempts == 2


async def test_a_transient_failure_on_the_last_attempt_is_reported_as_failed() -> None:
    uow = FakeUnitOfWork()
    await services.deliver(uow, ScriptedSender(TransientSendError("timed out")), outgoing(), LAST)
    [failed] = uow.events("EmailFailed")
    assert failed.data.permanent is False and failed.data.reason == "timed out"


async def test_a_permanent_failure_is_reported_at_once_and_not_retried() -> None:
    uow, sender, email = (
        FakeUnitOfWork(),
        ScriptedSender(PermanentSendError("550 no such user")),
        outgoing(),
    )
    await services.deliver(uow, sender, email, FIRST)
    await services.deliver(uow, sender, email, FIRST)
    [failed] = uow.events("EmailFailed")
    assert failed.data.permanent is True and "550" in failed.data.reason
    assert sender.sent == []
