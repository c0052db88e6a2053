"""Publishing with the guarantees the broker defaults leave out: persistent, confirmed, routed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange


@dataclass(frozen=True)
class OutgoingMessage:
    body: bytes
    routing_key: str
    message_id: str
    correlation_id: str
    message_type: str
    headers: dict[str, Any]
    expiration_seconds: float | None = None  # for state-like messages that go stale
    mandatory: bool = True  # False only where nobody listening is normal (heartbeats)


class Publisher(Protocol):
    async def publish(self, message: OutgoingMessage) -> None:
        """Return once the broker confirmed it; raise when it could not be routed or confirmed."""


class RabbitPublisher:
    """Publishes to the events exchange through a channel that raises on unroutable messages."""

    def __init__(self, broker: RabbitBroker, exchange: str, *, timeout: float) -> None:
        self._broker = broker
        self._exchange = RabbitExchange(exchange, type=ExchangeType.TOPIC, durable=True)
        self._timeout = timeout

    async def publish(self, message: OutgoingMessage) -> None:
        await self._broker.publish(
            message.body,
            exchange=self._exchange,
            routing_key=message.routing_key,
            persist=True,
            mandatory=message.mandatory,
            timeout=self._timeout,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            message_type=message.message_type,
            content_type="application/json",
            headers=message.headers,
            expiration=message.expiration_seconds,
        )
