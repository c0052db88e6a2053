"""Background jobs: periodic entry points, as thin as routes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from invitations.context import InvitationsContext
from invitations.service_layer import imports, services

log = logging.getLogger(__name__)


async def send_due_reminders(context: InvitationsContext) -> None:
    sent = await services.send_due_reminders(
        context.uow(), policy=context.invite_policy, minter=context.minter, now=datetime.now(UTC)
    )
    if sent:
        log.info("invitation reminders requested", extra={"count": sent})


async def work_on_imports(context: InvitationsContext) -> None:
    """Chunk after chunk, until no import has rows left (each chunk is its own commit)."""
    while await imports.work_on_imports(
        context.uow(), policy=context.invite_policy, minter=context.minter, now=datetime.now(UTC)
    ):
        pass
