"""How long a browser stays signed in: until it has been idle too long, and never longer than
a fixed time after signing in, however busy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    max_age: timedelta

    def expires_at(self, started_at: datetime, now: datetime) -> datetime:
        """When a token issued ``now`` stops working unless renewed by activity."""
        return min(now + self.idle, started_at + self.max_age)

    def has_ended(self, started_at: datetime, now: datetime) -> bool:
        return now >= started_at + self.max_age
