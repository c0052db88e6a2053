"""The reminder job: a periodic entry point, as thin as a route."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from invitations.service_layer import services
from invitations.wiring import InvitationsContext

log = logging.getLogger(__name__)


async def send_due_reminders(context: InvitationsContext) -> None:
    sent = await services.send_due_reminders(
        context.uow(), policy=context.invite_policy, minter=context.minter, now=datetime.now(UTC)
    )
    if sent:
        log.info("invitation reminders requested", extra={"count": sent})
