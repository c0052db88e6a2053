"""Whether the mailer can send, from its heartbeat (no call to the mailer): kept in memory by
every replica."""

from __future__ import annotations

from datetime import UTC, datetime

from onboarding_shared.contract import MailerStatus
from onboarding_shared.messaging.broadcast import LatestBroadcast


def mailer_heartbeats(events_exchange: str, *, service: str) -> LatestBroadcast[MailerStatus]:
    return LatestBroadcast(
        MailerStatus, events_exchange, service=service, order=lambda status: status.reported_at
    )


class HeartbeatSmtpStatus:
    def __init__(self, heartbeats: LatestBroadcast[MailerStatus]) -> None:
        self._heartbeats = heartbeats

    def smtp_configured(self, now: datetime | None = None) -> bool | None:
        latest = self._heartbeats.latest
        if latest is None or not latest.is_current(now or datetime.now(UTC)):
            return None
        return latest.smtp_configured
