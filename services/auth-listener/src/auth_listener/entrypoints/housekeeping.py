"""Forgetting logins of accounts that never arrived, so the table stays small."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from auth_listener.context import AuthListenerContext
from auth_listener.service_layer import services

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 3600.0


def forget_stale_logins(context: AuthListenerContext) -> Callable[[], Coroutine[Any, Any, None]]:
    retention = timedelta(hours=context.settings.pending_login_retention_hours)

    async def every_hour() -> None:
        while True:
            try:
                forgotten = await services.forget_stale_logins(
                    context.uow(), received_before=datetime.now(UTC) - retention
                )
                if forgotten:
                    log.info("stale pending logins forgotten", extra={"count": forgotten})
            except Exception as error:  # the database may be away; the next round retries
                log.warning("could not forget stale logins", extra={"error": repr(error)})
            await asyncio.sleep(INTERVAL_SECONDS)

    return every_hour
