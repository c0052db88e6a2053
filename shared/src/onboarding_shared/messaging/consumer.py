"""Reliable consumption: every message ends acknowledged exactly once, as handled, as waiting
for a retry, or as parked with its reason. Nothing is dropped, nothing blocks the queue."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from faststream import AckPolicy
from faststream.message import StreamMessage
from faststream.rabbit import Channel, RabbitBroker, RabbitQueue
from faststream.rabbit.annotations import RabbitMessage
from pydantic import ValidationError

from onboarding_shared.contract.envelope import Envelope, EventData
from onboarding_shared.contract.events import spec_for_type
from onboarding_shared.correlation import use_correlation_id
from onboarding_shared.messaging.topology import ConsumerQueue
from onboarding_shared.observability import MESSAGES_HANDLED, log_context, scrub_text

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-attempt"
REASON_HEADER = "x-parked-reason"
PARKED_AT_HEADER = "x-parked-at"
ORIGINAL_QUEUE_HEADER = "x-original-queue"
ORIGINAL_EXCHANGE_HEADER = "x-original-exchange"
ORIGINAL_ROUTING_KEY_HEADER = "x-original-routing-key"
LAST_ERROR_HEADER = "x-last-error"


class PermanentFailure(Exception):
    """Retrying cannot help (malformed input, unknown event): park the message at once."""


@dataclass(frozen=True)
class Delivery:
    """What a handler may need to know about the delivery it is handling."""

    attempt: int
    max_attempts: int
    routing_key: str

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


MessageHandler = Callable[[bytes, Delivery], Awaitable[None]]
DataT = TypeVar("DataT", bound=EventData)
EventHandler = Callable[[Envelope[DataT], Delivery], Awaitable[None]]


class EventRouter:
    """Decodes an envelope and hands it to the handler registered for its type and version."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, int], tuple[type[EventData], EventHandler[Any]]] = {}

    def register(self, model: type[DataT], handler: EventHandler[DataT]) -> None:
        self._handlers[(model.spec.event_type, model.spec.version)] = (model, handler)

    async def __call__(self, body: bytes, delivery: Delivery) -> None:
        envelope, handler = self.decode(body)
        use_correlation_id(envelope.correlation_id)
        await handler(envelope, delivery)

    def decode(self, body: bytes) -> tuple[Envelope[Any], EventHandler[Any]]:
        try:
            raw = json.loads(body)
            key = (raw["event_type"], int(raw["event_version"]))
        except (ValueError, TypeError, KeyError) as error:
            raise PermanentFailure(f"not an event envelope: {type(error).__name__}") from None
        if key not in self._handlers:
            known = "known to the contract" if spec_for_type(*key) else "unknown"
            raise PermanentFailure(f"no handler here for {key[0]} v{key[1]} ({known})")
        model, handler = self._handlers[key]
        try:
            envelope = Envelope[model].model_validate(raw)  # type: ignore[valid-type]
        except ValidationError as error:
            raise PermanentFailure(describe_validation_error(error)) from None
        return envelope, handler


def describe_validation_error(error: ValidationError) -> str:
    """Field locations and messages only: input values may carry secrets."""
    problems = (
        f"{'.'.join(str(part) for part in item['loc']) or 'body'}: {item['msg']}"
        for item in error.errors(include_input=False, include_url=False)
    )
    return "invalid message: " + "; ".join(problems)


class ReliableConsumer:
    def __init__(
        self,
        queue: ConsumerQueue,
        handle: MessageHandler,
        *,
        publish_timeout: float = 10.0,
    ) -> None:
        self.queue = queue
        self._handle = handle
        self._publish_timeout = publish_timeout
        self._broker: RabbitBroker | None = None

    def subscribe(self, broker: RabbitBroker) -> None:
        self._broker = broker

        async def consume(message: RabbitMessage) -> None:
            await self.process(message)

        broker.subscriber(
            RabbitQueue(self.queue.name, declare=False),
            channel=Channel(prefetch_count=self.queue.prefetch),
            ack_policy=AckPolicy.MANUAL,
            no_reply=True,
            decoder=raw_body_decoder,
            title=self.queue.name,
        )(consume)

    async def process(self, message: RabbitMessage) -> None:
        # Each delivery runs in its own task: what is bound here stays with this message.
        with log_context(
            event_id=message.message_id,
            correlation_id=message.correlation_id,
            queue=self.queue.name,
        ):
            await self._process(message)

    async def _process(self, message: RabbitMessage) -> None:
        headers = dict(message.headers or {})
        delivery = Delivery(
            attempt=_int(headers.get(ATTEMPT_HEADER), default=1),
            max_attempts=self.queue.max_attempts,
            routing_key=str(
                headers.get(ORIGINAL_ROUTING_KEY_HEADER) or message.raw_message.routing_key or ""
            ),
        )
        try:
            await self._handle(message.body, delivery)
        except PermanentFailure as failure:
            await self._settle(message, self._park(message, str(failure)), "parked")
        except Exception as error:  # any failure: retry later, never drop
            # Error texts can echo input (pydantic does); they go to logs and headers.
            reason = scrub_text(f"{type(error).__name__}: {error}")
            if delivery.is_last_attempt:
                log.exception("message failed on its last attempt; parking it")
                final = f"failed after {delivery.attempt} attempts: {reason}"
                await self._settle(message, self._park(message, final), "parked")
            else:
                log.warning(
                    "message failed; retrying later",
                    extra={"queue": self.queue.name, "attempt": delivery.attempt, "error": reason},
                )
                await self._settle(message, self._retry(message, delivery, reason), "retried")
        else:
            await message.ack()
            MESSAGES_HANDLED.labels(queue=self.queue.name, outcome="handled").inc()

    async def _settle(self, message: RabbitMessage, forward: Awaitable[None], outcome: str) -> None:
        try:
            await forward
        except Exception:
            # Could not hand it on (the broker is likely in trouble): give it back for redelivery.
            log.exception("could not forward a failed message; requeueing it")
            await asyncio.sleep(1)
            await message.nack(requeue=True)
            return
        await message.ack()
        MESSAGES_HANDLED.labels(queue=self.queue.name, outcome=outcome).inc()

    async def _retry(self, message: RabbitMessage, delivery: Delivery, reason: str) -> None:
        headers = {
            **_original_headers(message),
            ATTEMPT_HEADER: delivery.attempt + 1,
            LAST_ERROR_HEADER: reason[:500],
        }
        await self._forward(message, self.queue.retry_queue(delivery.attempt), headers)

    async def _park(self, message: RabbitMessage, reason: str) -> None:
        log.error("message parked", extra={"queue": self.queue.name, "reason": reason})
        headers = {
            **_original_headers(message),
            REASON_HEADER: reason[:1000],
            PARKED_AT_HEADER: datetime.now(UTC).isoformat(),
            ORIGINAL_QUEUE_HEADER: self.queue.name,
        }
        await self._forward(
            message, self.queue.name, headers, exchange=self.queue.dead_letter_exchange
        )

    async def _forward(
        self,
        message: RabbitMessage,
        routing_key: str,
        headers: dict[str, Any],
        exchange: str | None = None,
    ) -> None:
        assert self._broker is not None, "subscribe() first"
        await self._broker.publish(
            message.body,
            exchange=exchange,
            routing_key=routing_key,
            persist=True,
            mandatory=True,
            timeout=self._publish_timeout,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            content_type=message.content_type,
            message_type=message.raw_message.type,
            headers=headers,
        )


async def raw_body_decoder(message: StreamMessage[Any]) -> bytes:
    # Decoding is ours to do, so a body that is not JSON is parked with a reason, not rejected.
    return message.body


def _original_headers(message: RabbitMessage) -> dict[str, Any]:
    headers = dict(message.headers or {})
    headers.setdefault(ORIGINAL_EXCHANGE_HEADER, message.raw_message.exchange or "")
    headers.setdefault(ORIGINAL_ROUTING_KEY_HEADER, message.raw_message.routing_key or "")
    return headers


def _int(value: object, *, default: int) -> int:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return default
