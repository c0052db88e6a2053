"""The mailer's rules, with fakes: rendering, escaping, and what each SMTP outcome leads to."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from mailer.domain.model import Email, PermanentSendError, TransientSendError
from mailer.domain.rendering import InvitationEmail, build_message, render_invitation
from mailer.service_layer import services
from mailer.service_layer.unit_of_work import EmailRepository, MailerUnitOfWork
from onboarding_shared.contract import AcceptanceEmailRequested, Envelope, new_event
from onboarding_shared.messaging.consumer import Delivery, RetryLater
from onboarding_shared.outages import DependencyUnavailable, is_outage
from tests.support.factories import invitation_requested
from tests.support.fake_mailer import ScriptedSender
from tests.support.fakes import FakeMessagingUnitOfWork

EXPIRES = datetime(2030, 5, 17, 9, 30, tzinfo=UTC)
ZERO = timedelta(0)


def invitation(**overrides: object) -> InvitationEmail:
    values: dict[str, object] = {
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


DELAYS = (1.0, 5.0, 30.0)
FIRST = Delivery(1, 3, "invitation.requested.v2", hold_delays=DELAYS)
LAST = Delivery(3, 3, "invitation.requested.v2", hold_delays=DELAYS)
RETRY_FOR = timedelta(hours=24)
REFUSED = TransientSendError("ConnectionRefusedError: [Errno 111]", server_answered=False)


def outgoing(**overrides: object) -> services.OutgoingEmail:
    return services.invitation_email(
        invitation_requested("ada@example.com", **overrides), sender="team@acme.test"
    )


async def deliver(
    uow: FakeUnitOfWork,
    sender: ScriptedSender,
    email: services.OutgoingEmail,
    delivery: Delivery = FIRST,
    retry_for: timedelta = RETRY_FOR,
) -> services.Settled | None:
    return await services.deliver(uow, sender, email, delivery, retry_for=retry_for)


async def test_an_email_is_sent_once_even_when_its_event_comes_twice() -> None:
    uow, sender, email = FakeUnitOfWork(), ScriptedSender(), outgoing()
    await deliver(uow, sender, email)
    await deliver(uow, sender, email)
    assert len(sender.sent) == 1
    [sent] = uow.events("EmailSent")
    assert sent.data.attempts == 1 and sent.data.recipient == "ada@example.com"


async def test_a_deferred_recipient_waits_in_a_wait_queue_and_is_announced() -> None:
    uow, email = FakeUnitOfWork(), outgoing()
    before = datetime.now(UTC)
    with pytest.raises(RetryLater, match="451 later"):
        await deliver(uow, ScriptedSender(TransientSendError("451 later", code=451)), email)
    [deferred] = uow.events("EmailDeferred")
    assert deferred.data.reason == "451 later" and deferred.data.attempts == 1
    # The first hold waits in the first wait queue.
    assert deferred.data.next_attempt_at - before >= timedelta(seconds=DELAYS[0])
    assert deferred.data.deliver_by <= datetime.now(UTC) + RETRY_FOR
    await deliver(uow, ScriptedSender(), email, Delivery(1, 3, "k", holds=1, hold_delays=DELAYS))
    [sent] = uow.events("EmailSent")
    assert sent.data.attempts == 2


@pytest.mark.parametrize(
    "error",
    [REFUSED, TransientSendError("421 4.3.2 service not available", code=421)],
    ids=["unreachable", "421"],
)
async def test_an_unavailable_server_keeps_the_message_in_hand_even_on_its_last_attempt(
    error: TransientSendError,
) -> None:
    uow, email = FakeUnitOfWork(), outgoing()
    with pytest.raises(DependencyUnavailable) as raised:
        await deliver(uow, ScriptedSender(error), email, LAST)
    assert is_outage(raised.value)
    assert uow.events("EmailFailed") == []
    [deferred] = uow.events("EmailDeferred")
    assert deferred.data.reason == str(error)


async def test_announcements_thin_out_as_an_outage_goes_on() -> None:
    uow, email = FakeUnitOfWork(), outgoing()
    for _ in range(5):
        with pytest.raises(DependencyUnavailable):
            await deliver(uow, ScriptedSender(REFUSED), email)
    # Attempts 1 (first deferral), 2 and 4: not 3 nor 5, same reason.
    assert [e.data.attempts for e in uow.events("EmailDeferred")] == [1, 2, 4]


async def test_an_email_still_deferred_when_its_link_expires_fails_saying_so() -> None:
    uow = FakeUnitOfWork()
    expired = outgoing(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    settled = await deliver(uow, ScriptedSender(REFUSED), expired)
    assert settled == services.Settled(kind="invitation", sent=False, permanent=False)
    [failed] = uow.events("EmailFailed")
    assert failed.data.permanent is False
    assert failed.data.reason.startswith("its link expired before it could be delivered")
    assert "ConnectionRefusedError" in failed.data.reason


async def test_an_email_still_deferred_after_the_retry_limit_fails() -> None:
    uow = FakeUnitOfWork()
    settled = await deliver(
        uow, ScriptedSender(TransientSendError("450 busy", code=450)), outgoing(), retry_for=ZERO
    )
    assert settled is not None and not settled.sent
    [failed] = uow.events("EmailFailed")
    assert failed.data.reason.startswith("not delivered by ") and "450 busy" in failed.data.reason


async def test_a_permanent_failure_is_reported_at_once_and_not_retried() -> None:
    uow, sender, email = (
        FakeUnitOfWork(),
        ScriptedSender(PermanentSendError("550 no such user")),
        outgoing(),
    )
    await deliver(uow, sender, email)
    await deliver(uow, sender, email)
    [failed] = uow.events("EmailFailed")
    assert failed.data.permanent is True and "550" in failed.data.reason
    assert sender.sent == []


@pytest.mark.parametrize("recipient", ["not an address", "a@b.c, d@e.f", "x@", ""])
def test_a_recipient_that_is_not_one_address_is_refused_before_any_smtp(recipient: str) -> None:
    # The subscriber parks it at once ("cannot build the email"): no retry can fix it.
    with pytest.raises(ValueError, match="not one email address"):
        build_message(render_invitation(invitation()), sender="team@acme.test", recipient=recipient)


def acceptance_requested(**overrides: object) -> Envelope[AcceptanceEmailRequested]:
    values: dict[str, object] = {
        "invitation_id": uuid.uuid4(),
        "recipient": "Boss <boss@acme.test>",
        "inviter_name": "The Boss",
        "member_name": "Grace <Hopper>",
        "member_email": "grace@example.com",
        "workspace_name": "Acme",
        "console_url": "https://chat.acme.test/",
        "accepted_at": datetime(2030, 5, 17, 11, 30, tzinfo=timezone(timedelta(hours=2))),
        **overrides,
    }
    return new_event(AcceptanceEmailRequested(**values), producer="invitations")


def test_the_inviter_is_told_who_accepted_in_both_parts_escaped_in_html() -> None:
    email = services.acceptance_email(acceptance_requested(), sender="team@acme.test")
    assert email.message["Subject"] == "Grace <Hopper> accepted your invitation to Acme"
    assert email.message["To"] == "Boss <boss@acme.test>"
    text = str(email.message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[union-attr]
    html = str(email.message.get_body(preferencelist=("html",)).get_content())  # type: ignore[union-attr]
    assert "Grace <Hopper> (grace@example.com) joined Acme" in text
    assert "May 17, 2030 at 09:30 UTC" in text  # told in UTC, whatever offset it came with
    assert "Grace &lt;Hopper&gt;" in html and "<Hopper>" not in html
    assert 'href="https://chat.acme.test/"' in html
    with pytest.raises(ValueError, match="http"):
        services.acceptance_email(
            acceptance_requested(console_url="javascript:alert(1)"), sender="team@acme.test"
        )


async def test_an_acceptance_email_is_sent_once_and_its_outcome_not_announced() -> None:
    uow, sender = FakeUnitOfWork(), ScriptedSender()
    email = services.acceptance_email(acceptance_requested(), sender="team@acme.test")
    settled = await deliver(uow, sender, email)
    assert settled == services.Settled(kind="acceptance", sent=True)
    assert await deliver(uow, sender, email) is None
    assert len(sender.sent) == 1
    assert uow.events("EmailSent") == []


def test_the_reminder_says_so_and_carries_the_same_link() -> None:
    rendered = render_invitation(invitation(reminder=True))
    assert rendered.subject == "Reminder: Welcome to Acme"
    assert "A reminder: your invitation is still waiting" in rendered.text
    assert "<strong>Reminder:</strong>" in rendered.html
    assert 'href="https://chat.acme.test/join/tok123"' in rendered.html
    assert "Reminder" not in render_invitation(invitation()).text
