"""Keeping the mailer's latest heartbeat in memory, so a service can warn that emails will
wait (SMTP not configured, SMTP failing, or no mailer at all) without calling the mailer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from faststream import AckPolicy
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue

from onboarding_shared.contract import Envelope, MailerStatus
from onboarding_shared.messaging.consumer import raw_body_decoder

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

    def subscribe(self, broker: RabbitBroker) -> None:
        async def remember(body: bytes) -> None:
            self.remember(Envelope[MailerStatus].model_validate_json(body).data)

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
