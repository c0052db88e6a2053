"""Publishing with the guarantees the broker defaults leave out: persistent, confirmed, routed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange

from onboarding_shared.contract import mail_exchange_for, spec_for_routing_key


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
    """Publishes to the events exchange (mailer-only requests to the mail exchange) through a
    channel that raises on unroutable messages. Every message carries the broker user it is
    sent as (``user_id``): RabbitMQ refuses a user_id other than the connection's, so
    consumers can tell which service sent it."""

    def __init__(
        self, broker: RabbitBroker, exchange: str, *, timeout: float, user_id: str
    ) -> None:
        self._broker = broker
        self._events = _topic(exchange)
        self._mail = _topic(mail_exchange_for(exchange))
        self._timeout = timeout
        self._user_id = user_id

    def _exchange_for(self, routing_key: str) -> RabbitExchange:
        spec = spec_for_routing_key(routing_key)
        return self._mail if spec is not None and spec.mail_only else self._events

    async def publish(self, message: OutgoingMessage) -> None:
        # The whole call, not only the confirm: FastStream first (re)declares the exchange on a
        # channel that, while the broker is away, never becomes ready, and a relay stuck there
        # would also hold up the process's shutdown.
        async with asyncio.timeout(self._timeout):
            await self._publish(message)

    async def _publish(self, message: OutgoingMessage) -> None:
        await self._broker.publish(
            message.body,
            exchange=self._exchange_for(message.routing_key),
            user_id=self._user_id,
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


def _topic(name: str) -> RabbitExchange:
    return RabbitExchange(name, type=ExchangeType.TOPIC, durable=True)
