"""What the use cases need from the outside world, besides the unit of work."""

from __future__ import annotations

from typing import Protocol


class MailerHeartbeat(Protocol):
    """What this replica last heard from the mailer (its heartbeat, never a call to it)."""

    @property
    def heard(self) -> bool:
        """False until the first heartbeat arrives."""

    @property
    def reachable(self) -> bool:
        """A heartbeat came recently enough: the mailer is running."""

    @property
    def smtp_configured(self) -> bool | None: ...

    @property
    def last_attempt_ok(self) -> bool | None:
        """Whether its last attempt reached the SMTP server; None before the first one."""


class MailerStatusSource(Protocol):
    def snapshot(self) -> MailerHeartbeat: ...
