"""Stand-ins for what ReliableConsumer reads from FastStream's message and the broker it
forwards through: enough to drive a consumer without RabbitMQ."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RawMessage:
    routing_key: str = "invitation.requested.v2"
    exchange: str = "onboarding.events.mail"
    type: str = "InvitationRequested"
    user_id: str | None = "guest"  # by default the service's own broker user


@dataclass
class FakeRabbitMessage:
    """What ReliableConsumer reads from FastStream's message."""

    body: bytes
    message_id: str
    correlation_id: str
    headers: dict[str, Any] = field(default_factory=dict)
    content_type: str = "application/json"
    raw_message: RawMessage = field(default_factory=RawMessage)
    settled: list[str] = field(default_factory=list)

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nack(self, requeue: bool = True) -> None:
        self.settled.append("nack")


class FakeBroker:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    async def publish(self, body: bytes, **options: Any) -> None:
        self.published.append({"body": body.decode(), **options})
