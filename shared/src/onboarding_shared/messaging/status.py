"""Keeping the mailer's latest heartbeat in memory, so a service can warn that emails will
wait (SMTP not configured, SMTP failing, or no mailer at all) without calling the mailer."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from faststream import AckPolicy
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue
from faststream.rabbit.annotations import RabbitMessage
from prometheus_client import Counter
from pydantic import ValidationError

from onboarding_shared.contract import Envelope, MailerStatus
from onboarding_shared.messaging.consumer import raw_body_decoder
from onboarding_shared.messaging.trust import BusIdentity

log = logging.getLogger(__name__)

STATUS_DROPPED = Counter(
    "onboarding_mailer_status_dropped_total",
    "Mailer heartbeats dropped, by reason (invalid, untrusted producer); the next one replaces "
    "them.",
    ["reason"],
)

# A heartbeat older than this many intervals means the mailer is gone.
STALE_AFTER_INTERVALS = 3


@dataclass(frozen=True)
class MailerStatusSnapshot:
    heard: bool  # False until the first heartbeat arrives
    reachable: bool
    smtp_configured: bool | None = None
    last_attempt_ok: bool | None = None


class MailerStatusWatcher:
    """Listens on a private, self-deleting queue: every replica hears every heartbeat."""

    def __init__(
        self, events_exchange: str, *, service: str, started_at: datetime | None = None
    ) -> None:
        self._exchange = RabbitExchange(events_exchange, type=ExchangeType.TOPIC, durable=True)
        self._queue = RabbitQueue(
            f"{service}.mailer-status.{uuid.uuid4().hex[:12]}",
            exclusive=True,
            auto_delete=True,
            durable=False,
            routing_key=MailerStatus.spec.routing_key,
        )
        self._latest: MailerStatus | None = None
        self._started_at = started_at or datetime.now(UTC)

    def subscribe(self, broker: RabbitBroker, identity: BusIdentity) -> None:
        async def remember(message: RabbitMessage) -> None:
            headers = dict(message.headers or {})
            sender = identity.sender(message.raw_message.user_id, headers)
            if not identity.trusts(MailerStatus.spec, sender):
                # State, not history, and the next heartbeat comes soon: drop it, counted.
                STATUS_DROPPED.labels(reason="untrusted producer").inc()
                log.warning("mailer status dropped", extra={"reason": "untrusted producer"})
                return
            try:
                status = Envelope[MailerStatus].model_validate_json(message.body).data
            except (ValidationError, ValueError, RecursionError):
                STATUS_DROPPED.labels(reason="invalid").inc()
                log.warning("mailer status dropped", extra={"reason": "invalid"})
                return
            self.remember(status)

        broker.subscriber(
            self._queue,
            self._exchange,
            ack_policy=AckPolicy.ACK_FIRST,
            no_reply=True,
            decoder=raw_body_decoder,
            title="mailer-status (private per replica)",
        )(remember)

    def remember(self, status: MailerStatus) -> None:
        if self._latest is None or status.reported_at >= self._latest.reported_at:
            self._latest = status

    def snapshot(self, now: datetime | None = None) -> MailerStatusSnapshot:
        now = now or datetime.now(UTC)
        latest = self._latest
        if latest is None:
            return MailerStatusSnapshot(heard=False, reachable=False)
        deadline = latest.reported_at + timedelta(
            seconds=latest.interval_seconds * STALE_AFTER_INTERVALS
        )
        return MailerStatusSnapshot(
            heard=True,
            reachable=now <= deadline,
            smtp_configured=latest.smtp_configured,
            last_attempt_ok=latest.last_attempt_ok,
        )
