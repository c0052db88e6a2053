"""What the mailer's heartbeat says (no call to the mailer): kept in memory by every replica."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from invitations.service_layer.ports import MailerHeartbeat
from onboarding_shared.contract import MailerStatus
from onboarding_shared.messaging.broadcast import LatestBroadcast


def mailer_heartbeats(events_exchange: str, *, service: str) -> LatestBroadcast[MailerStatus]:
    return LatestBroadcast(
        MailerStatus, events_exchange, service=service, order=lambda status: status.reported_at
    )


@dataclass(frozen=True)
class HeartbeatSnapshot:
    heard: bool
    reachable: bool
    smtp_configured: bool | None = None
    last_attempt_ok: bool | None = None


class HeartbeatMailerStatus:
    def __init__(self, heartbeats: LatestBroadcast[MailerStatus]) -> None:
        self._heartbeats = heartbeats

    def snapshot(self, now: datetime | None = None) -> MailerHeartbeat:
        latest = self._heartbeats.latest
        if latest is None:
            return HeartbeatSnapshot(heard=False, reachable=False)
        return HeartbeatSnapshot(
            heard=True,
            reachable=latest.is_current(now or datetime.now(UTC)),
            smtp_configured=latest.smtp_configured,
            last_attempt_ok=latest.last_attempt_ok,
        )
