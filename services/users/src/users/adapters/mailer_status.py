"""Whether the mailer can send, from its heartbeat (no call to the mailer)."""

from __future__ import annotations

from onboarding_shared.messaging.status import MailerStatusWatcher


class HeartbeatSmtpStatus:
    def __init__(self, watcher: MailerStatusWatcher) -> None:
        self._watcher = watcher

    def smtp_configured(self) -> bool | None:
        snapshot = self._watcher.snapshot()
        if not snapshot.heard or not snapshot.reachable:
            return None
        return snapshot.smtp_configured
