"""Use cases of the mailer: render, send once, report the outcome as an event."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

from mailer.domain.model import Email, EmailStatus, SendError, TransientSendError
from mailer.domain.rendering import (
    AcceptanceEmail,
    InvitationEmail,
    RenderedEmail,
    WelcomeEmail,
    build_message,
    render_acceptance,
    render_invitation,
    render_welcome,
)
from mailer.service_layer.ports import MailSender
from mailer.service_layer.unit_of_work import MailerUnitOfWork
from onboarding_shared.contract import (
    AcceptanceEmailRequested,
    EmailDeferred,
    EmailFailed,
    EmailKind,
    EmailSent,
    Envelope,
    InvitationRequested,
    WelcomeEmailRequested,
)
from onboarding_shared.messaging.consumer import OUTAGE_PAUSES, Delivery, RetryLater
from onboarding_shared.outages import DependencyUnavailable

INVITATION_KIND = EmailKind.INVITATION
WELCOME_KIND = EmailKind.WELCOME
# Not an EmailKind: the email events' `kind` is a closed set (a new value would be a new major
# version of each), so the outcomes of these emails are counted and logged, not announced.
ACCEPTANCE_KIND = "acceptance"
ANNOUNCED_KINDS = frozenset(kind.value for kind in EmailKind)


@dataclass(frozen=True)
class Settled:
    """How an email ended, for the entry point to count once committed."""

    kind: str
    sent: bool
    permanent: bool = False  # for a failure: retrying could not have helped


@dataclass(frozen=True)
class OutgoingEmail:
    source_event_id: uuid.UUID
    kind: str
    reference_id: uuid.UUID
    message: EmailMessage
    # Retrying stops by then: a link that no longer works is not worth delivering.
    link_expires_at: datetime | None = None

    @property
    def recipient(self) -> str:
        return str(self.message["To"])


def invitation_email(event: Envelope[InvitationRequested], *, sender: str) -> OutgoingEmail:
    data = event.data
    rendered = render_invitation(
        InvitationEmail(
            workspace_name=data.workspace_name,
            join_url=data.join_url,
            expires_at=data.expires_at,
            inviter_name=data.inviter_name,
            message=data.message,
            reminder=data.reminder,
        )
    )
    return _outgoing(
        event, INVITATION_KIND, data.invitation_id, rendered, data.email, sender, data.expires_at
    )


def welcome_email(event: Envelope[WelcomeEmailRequested], *, sender: str) -> OutgoingEmail:
    data = event.data
    rendered = render_welcome(
        WelcomeEmail(
            name=data.name,
            username=data.username,
            workspace_name=data.workspace_name,
            login_url=data.login_url,
            set_password_url=data.set_password_url,
            set_password_expires_at=data.set_password_expires_at,
        )
    )
    expires = data.set_password_expires_at if data.set_password_url else None
    return _outgoing(event, WELCOME_KIND, data.user_id, rendered, data.email, sender, expires)


def acceptance_email(event: Envelope[AcceptanceEmailRequested], *, sender: str) -> OutgoingEmail:
    data = event.data
    rendered = render_acceptance(
        AcceptanceEmail(
            member_name=data.member_name,
            member_email=data.member_email,
            workspace_name=data.workspace_name,
            console_url=data.console_url,
            accepted_at=data.accepted_at,
            inviter_name=data.inviter_name,
        )
    )
    return _outgoing(
        event, ACCEPTANCE_KIND, data.invitation_id, rendered, data.recipient, sender, None
    )


def _outgoing(
    event: Envelope[Any],
    kind: str,
    reference_id: uuid.UUID,
    rendered: RenderedEmail,
    recipient: str,
    sender: str,
    link_expires_at: datetime | None,
) -> OutgoingEmail:
    return OutgoingEmail(
        source_event_id=event.event_id,
        kind=kind,
        reference_id=reference_id,
        # The event's id: a resend after a crash carries the same Message-ID, so receivers
        # can drop the duplicate.
        message=build_message(
            rendered, sender=sender, recipient=recipient, message_id=event.event_id
        ),
        link_expires_at=link_expires_at,
    )


async def deliver(
    uow: MailerUnitOfWork,
    sender: MailSender,
    outgoing: OutgoingEmail,
    delivery: Delivery,
    *,
    retry_for: timedelta,
) -> Settled | None:
    """Send ``outgoing`` unless it was already settled (then None); emit EmailSent or
    EmailFailed and say which, once committed.

    The attempt is counted in a transaction of its own first, so it stays counted whatever
    happens to the one that sends (a database cut, a crash). The email stays locked while
    sending (``lock_for_event``: its row on PostgreSQL, inside a transaction, so that a
    transaction-mode PgBouncer keeps it; a lock in the process on SQLite, whose one write lock
    is then not held across SMTP), so a duplicate of the same event waits and then finds it
    settled. A transient failure defers the email (EmailDeferred) and raises, for the consumer
    to try again without spending the message's attempts, until ``retry_for`` or its link's
    expiry has passed; then it fails.
    """
    if not await _count_attempt(uow, outgoing):
        return None
    async with uow:
        email = await uow.emails.lock_for_event(outgoing.source_event_id)
        if email is None or email.settled:
            return None  # a duplicate delivery sent it in between
        try:
            await sender.send(outgoing.message)
        except SendError as error:
            return await _not_taken(uow, email, error, outgoing, delivery, retry_for=retry_for)
        email.mark_sent(datetime.now(UTC))
        _announce(uow, email, EmailSent, sent_at=email.sent_at or datetime.now(UTC))
        await uow.commit()
        return Settled(kind=email.kind, sent=True)


async def _count_attempt(uow: MailerUnitOfWork, outgoing: OutgoingEmail) -> bool:
    """Record the email if new and count one more attempt; False when it is settled already."""
    async with uow:
        await uow.emails.add_if_absent(_record_of(outgoing))
        email = await uow.emails.lock_for_event(outgoing.source_event_id)
        if email is None or email.settled:
            return False
        email.begin_attempt()
        await uow.commit()
    return True


async def _not_taken(
    uow: MailerUnitOfWork,
    email: Email,
    error: SendError,
    outgoing: OutgoingEmail,
    delivery: Delivery,
    *,
    retry_for: timedelta,
) -> Settled:
    """Defer it (which raises) while a transient failure leaves time to retry; else fail it."""
    deliver_by = email.deliver_by(retry_for, outgoing.link_expires_at)
    if isinstance(error, TransientSendError) and datetime.now(UTC) < deliver_by:
        await _defer(uow, email, error, deliver_by, delivery)
    await _fail(uow, email, error, _failure_reason(error, deliver_by, outgoing))
    return Settled(kind=email.kind, sent=False, permanent=error.permanent)


async def _defer(
    uow: MailerUnitOfWork,
    email: Email,
    error: TransientSendError,
    deliver_by: datetime,
    delivery: Delivery,
) -> None:
    """Record the deferral, announce it when it is news, and raise for the consumer: an
    unavailable server keeps the message in hand until it answers; a deferral of this one
    email sends it to a wait queue."""
    reason = _reason(error)
    now = datetime.now(UTC)
    if error.server_unavailable:
        retry_in = max(OUTAGE_PAUSES)
    else:
        retry_in = delivery.next_hold_delay if delivery.hold_delays else 0.0
    if email.defer(reason):
        _announce(
            uow,
            email,
            EmailDeferred,
            reason=reason,
            next_attempt_at=min(now + timedelta(seconds=retry_in), deliver_by),
            deliver_by=deliver_by,
            deferred_at=now,
        )
    await uow.commit()
    if error.server_unavailable:
        raise DependencyUnavailable(f"SMTP server unavailable: {reason}")
    raise RetryLater(f"SMTP deferred: {reason}")


async def _fail(uow: MailerUnitOfWork, email: Email, error: SendError, reason: str) -> None:
    email.mark_failed(reason)
    now = datetime.now(UTC)
    _announce(uow, email, EmailFailed, reason=reason, permanent=error.permanent, failed_at=now)
    await uow.commit()


def _announce(
    uow: MailerUnitOfWork,
    email: Email,
    outcome: type[EmailSent] | type[EmailDeferred] | type[EmailFailed],
    **details: Any,
) -> None:
    """Emit an email's outcome, with what every outcome says of its email; none for a kind
    the email events do not know (ANNOUNCED_KINDS)."""
    if email.kind not in ANNOUNCED_KINDS:
        return
    uow.emit(
        outcome(
            email_id=email.id,
            kind=EmailKind(email.kind),
            reference_id=email.reference_id,
            recipient=email.recipient,
            attempts=email.attempts,
            **details,
        )
    )


def _reason(error: SendError) -> str:
    return str(error)[:1000] or type(error).__name__


def _failure_reason(error: SendError, deliver_by: datetime, outgoing: OutgoingEmail) -> str:
    if error.permanent:
        return _reason(error)
    why = (
        "its link expired before it could be delivered"
        if deliver_by == outgoing.link_expires_at
        else f"not delivered by {deliver_by:%Y-%m-%d %H:%M} UTC"
    )
    return f"{why}; last answer: {_reason(error)}"[:1000]


def _record_of(outgoing: OutgoingEmail) -> Email:
    return Email(
        id=uuid.uuid4(),
        source_event_id=outgoing.source_event_id,
        kind=outgoing.kind,
        reference_id=outgoing.reference_id,
        recipient=outgoing.recipient,
        status=EmailStatus.QUEUED,
        created_at=datetime.now(UTC),
    )
