"""Settings and events for tests, with fast retry delays and a private broker namespace."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from onboarding_shared.contract import Envelope, InvitationRequested, new_event
from tests.support.broker import QUEUE_EXPIRES_SECONDS, Namespace

# Join links are derived from it; every service ignores settings it does not have.
INVITATION_TOKEN_SECRET = "tests-only-invitation-token-secret-0123456789"

FAST = {
    "retry_delays_seconds": (0.2, 0.5),
    "outbox_poll_interval_seconds": 0.2,
    "publish_timeout_seconds": 5.0,
    "graceful_timeout_seconds": 5.0,
}


def service_settings(
    namespace: Namespace, amqp_url: str, database_url: str, **overrides: Any
) -> dict[str, Any]:
    return {
        "database_url": database_url,
        "amqp_url": amqp_url,
        "events_exchange": namespace.exchange,
        "queue_prefix": namespace.queue_prefix,
        "queue_expires_seconds": QUEUE_EXPIRES_SECONDS,
        "http_port": 8999,
        "invitation_token_secret": INVITATION_TOKEN_SECRET,
        **FAST,
        **overrides,
    }


def invitation_requested(
    email: str = "someone@example.com", **overrides: Any
) -> Envelope[InvitationRequested]:
    data = {
        "invitation_id": uuid.uuid4(),
        "email": email,
        "workspace_name": "Acme",
        "join_url": "http://localhost:8001/join/secret-token",
        "expires_at": datetime.now(UTC) + timedelta(days=7),
        "token_hash": "0" * 64,
        **overrides,
    }
    return new_event(InvitationRequested(**data), producer="tests")
