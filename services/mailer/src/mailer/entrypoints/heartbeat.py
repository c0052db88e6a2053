"""The mailer's heartbeat: tells every service whether emails can go out right now."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from mailer.context import MailerContext
from onboarding_shared.contract import MailerStatus, new_event
from onboarding_shared.messaging.publisher import OutgoingMessage, Publisher

log = logging.getLogger(__name__)


def current_status(context: MailerContext) -> MailerStatus:
    last = context.sender.last_attempt if context.sender else None
    return MailerStatus(
        smtp_configured=context.settings.smtp_configured,
        last_attempt_ok=last.reached_server if last else None,
        last_attempt_at=last.at if last else None,
        interval_seconds=context.settings.status_interval_seconds,
        reported_at=datetime.now(UTC),
    )


def heartbeat(
    context: MailerContext, publisher: Publisher
) -> Callable[[], Coroutine[Any, Any, None]]:
    """A background job. Published directly, not through the outbox: it records no change,
    and a lost beat is replaced by the next one. A beat also goes out as soon as a send
    reaches the SMTP server after failing to, or the reverse, so the services' warning follows
    an outage within moments, not a whole interval later."""
    interval = context.settings.status_interval_seconds
    changed = context.sender.reachability_changed if context.sender else None

    async def beat_forever() -> None:
        while True:
            try:
                await publisher.publish(_message(current_status(context)))
            except Exception as error:  # the broker may be away; the next beat will tell
                log.warning("mailer heartbeat not published", extra={"error": repr(error)})
            await _next_beat(changed, interval)

    return beat_forever


async def _next_beat(changed: asyncio.Event | None, interval: float) -> None:
    if changed is None:
        await asyncio.sleep(interval)
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(interval):
            await changed.wait()
    changed.clear()


def _message(status: MailerStatus) -> OutgoingMessage:
    envelope = new_event(status, producer="mailer", correlation_id=str(uuid.uuid4()))
    return OutgoingMessage(
        body=envelope.to_json(),
        routing_key=envelope.routing_key,
        message_id=str(envelope.event_id),
        correlation_id=envelope.correlation_id,
        message_type=envelope.event_type,
        headers={},
        expiration_seconds=status.lifetime_seconds,
        mandatory=False,
    )
