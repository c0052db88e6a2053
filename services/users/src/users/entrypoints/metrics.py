"""The users service's own metrics, counted once what they count is committed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Histogram

from onboarding_shared.contract import Envelope, UserCreated
from users.service_layer.activations import Activation

USERS_CREATED = Counter("onboarding_users_created_total", "Accounts created.")
USERS_ACTIVATED = Counter(
    "onboarding_users_activated_total", "Pending accounts that became active (first login)."
)
ACTIVATION_SECONDS = Histogram(
    "onboarding_activation_seconds",
    "Time from an account's creation to its first login, observed on activation.",
    # From a login minutes after an admin created the account to an invitation used weeks later.
    buckets=(60, 300, 900, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400),
)


def count_created_users(committed: Sequence[Envelope[Any]]) -> None:
    """Every way an account is made (API, first admin, joining) commits one UserCreated."""
    created = sum(1 for envelope in committed if isinstance(envelope.data, UserCreated))
    if created:
        USERS_CREATED.inc(created)


def count_activation(activation: Activation | None) -> None:
    if activation is None:
        return
    USERS_ACTIVATED.inc()
    ACTIVATION_SECONDS.observe(activation.seconds_to_activate)
