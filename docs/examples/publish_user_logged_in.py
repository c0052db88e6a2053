"""Publish UserLoggedIn from an identity provider: the onboarding system then activates a
pending account on its first login. Needs only aio-pika (`pip install aio-pika`).

    AMQP_URL=amqp://idp:secret@rabbitmq:5672/ python publish_user_logged_in.py ada@example.com
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika

EXCHANGE = os.environ.get("EVENTS_EXCHANGE", "onboarding.events")
ROUTING_KEY = "user.logged_in.v1"


def user_logged_in(
    *,
    email: str | None = None,
    username: str | None = None,
    user_id: str | None = None,
    source: str = "identity-provider",
) -> dict[str, Any]:
    """The envelope of one login; give at least one of email, username or user_id."""
    now = datetime.now(UTC).isoformat()
    data = {"email": email, "username": username, "user_id": user_id}
    return {
        "event_id": str(uuid.uuid4()),  # new for each login, the same on every retry of it
        "event_type": "UserLoggedIn",
        "event_version": 1,
        "occurred_at": now,
        "producer": source,
        "correlation_id": str(uuid.uuid4()),
        "data": {
            **{key: value for key, value in data.items() if value is not None},
            "logged_in_at": now,
            "source": source,
        },
    }


async def publish(amqp_url: str, envelope: dict[str, Any], *, exchange: str = EXCHANGE) -> None:
    """Returns once the broker has the message on disk in every bound queue; raises if it
    could not be routed or confirmed (publish again later with the same envelope)."""
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        # Confirms, and an error instead of a silent drop when nothing is bound to the key.
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        target = await channel.get_exchange(exchange, ensure=False)  # the services declare it
        message = aio_pika.Message(
            body=json.dumps(envelope).encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=envelope["event_id"],
            correlation_id=envelope["correlation_id"],
            type=envelope["event_type"],
            app_id=envelope["producer"],
        )
        await target.publish(message, routing_key=ROUTING_KEY, mandatory=True, timeout=10)


if __name__ == "__main__":
    address = sys.argv[1] if len(sys.argv) > 1 else "ada@example.com"
    url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")
    asyncio.run(publish(url, user_logged_in(email=address)))
    print(f"published {ROUTING_KEY} for {address}")
