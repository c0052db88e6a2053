"""Slowing down password guessing: failures are counted per login typed, per account and per
client address in a window; past the limit, logins from there are refused until the lockout ends.

A lockout shows (429) only for what the client typed: the login itself, or its address. An
account's own lockout, reached through either its username or its email, refuses silently (the
answer of a wrong password), so a client that locked `ada` cannot learn which email address is
ada's by seeing it locked too: an unknown address is answered the same way."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from users.domain import rules


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures_per_account: int = 5
    max_failures_per_address: int = 50
    max_join_failures_per_address: int = 20
    # Accounts one client address may create through invite links in a window.
    max_link_joins_per_address: int = 5
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=5)


def account_key(identifier: str) -> str:
    """Failures with one login as typed (a username or an email, known or not)."""
    return f"account:{rules.login_key(identifier)}"


def user_key(user_id: uuid.UUID) -> str:
    """Failures against one account, whichever of its logins was typed."""
    return f"user:{user_id}"


def address_key(address: str) -> str:
    return f"address:{address}"


def join_address_key(address: str) -> str:
    """Failed link lookups (join and set-password) from one client address: guessing links,
    not passwords."""
    return f"join-address:{address}"


def link_join_address_key(address: str) -> str:
    """Accounts created through invite links from one client address (and attempts with an
    address that has an account already): one client cannot empty a link, nor go through the
    registered addresses."""
    return f"link-join-address:{address}"


@dataclass(eq=False)
class LoginThrottle:
    """Failed logins for one key (an account or a client address)."""

    key: str
    failures: int
    window_started_at: datetime
    blocked_until: datetime | None = None

    @classmethod
    def fresh(cls, key: str, now: datetime) -> LoginThrottle:
        return cls(key=key, failures=0, window_started_at=now)

    def retry_after(self, now: datetime) -> int | None:
        """Seconds until a login may be tried again, or None when it may now."""
        if self.blocked_until is None or now >= self.blocked_until:
            return None
        return max(1, math.ceil((self.blocked_until - now).total_seconds()))

    def record_failure(self, now: datetime, *, limit: int, policy: ThrottlePolicy) -> None:
        if now - self.window_started_at >= policy.window:
            self.failures = 0
            self.window_started_at = now
        self.failures += 1
        if self.failures >= limit:
            self.blocked_until = now + policy.lockout
            # The next window starts after the lockout: one more failure blocks again.
            self.failures = limit - 1
            self.window_started_at = now + policy.lockout

    def reset(self, now: datetime) -> None:
        self.failures = 0
        self.window_started_at = now
        self.blocked_until = None
