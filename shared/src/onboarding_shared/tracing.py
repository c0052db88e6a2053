"""Optional OpenTelemetry tracing, switched on by OTEL_ENABLED=true.

HTTP requests (FastAPI instrumentation), published messages (FastStream's
RabbitTelemetryMiddleware), consumed ones (consumed_span: the consumers use aio-pika directly,
with the middleware's span names and attributes) and, in between, the outbox: an event leaves
long after its request, from the relay, so the request's W3C trace context is stored with the
outbox row and restored while the relay publishes it. The consumer then continues the same
trace, and one invitation can be followed from the API call to the SMTP send.

The SDK reads the standard variables itself: OTEL_EXPORTER_OTLP_ENDPOINT (OTLP over HTTP,
default http://localhost:4318), OTEL_SERVICE_NAME (default onboarding-<service>),
OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, ...
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from aio_pika.abc import AbstractIncomingMessage
    from fastapi import FastAPI
    from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
    from opentelemetry.sdk.resources import Resource

# The SDK, the exporter and the instrumentations are imported only when tracing is on: they
# add about half a second to every service's start.

# W3C trace context only (traceparent, tracestate): baggage could carry anything at all.
_PROPAGATOR = TraceContextTextMapPropagator()
# Probes and scrapes would drown the traces that matter.
_UNTRACED_PATHS = "/health,/ready,/metrics"


def enable_tracing(service: str) -> None:
    """Export spans over OTLP, unless the process already has an SDK tracer provider (started
    under `opentelemetry-instrument`, or a test's in-memory exporter): then spans go there."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=_resource(service))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def _resource(service: str) -> Resource:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    detected = Resource.create()  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        return detected.merge(Resource({SERVICE_NAME: f"onboarding-{service}"}))
    return detected


def broker_middlewares(enabled: bool) -> tuple[RabbitTelemetryMiddleware, ...]:
    """Spans for every consumed and published message, with the context in their headers."""
    if not enabled:
        return ()
    from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware

    return (RabbitTelemetryMiddleware(),)


def instrument_http(app: FastAPI) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls=_UNTRACED_PATHS)


def current_trace_headers() -> dict[str, str] | None:
    """traceparent (and tracestate) of the current span, or None outside any recorded trace,
    as is always the case while tracing is off."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier or None


@contextmanager
def continued_trace(headers: Mapping[str, Any] | None) -> Iterator[None]:
    """Inside, the trace stored in ``headers`` is the current one: spans started there (the
    publish of an outbox row) belong to the request that wrote the row."""
    if not headers:
        yield
        return
    carrier = {key: str(value) for key, value in headers.items()}
    token = context.attach(_PROPAGATOR.extract(carrier))
    try:
        yield
    finally:
        context.detach(token)


@contextmanager
def consumed_span(
    enabled: bool, message: AbstractIncomingMessage, events_exchange: str
) -> Iterator[None]:
    """A consumer span around the handling of ``message``, child of the span that published
    it (its traceparent header): named and described as FastStream's middleware names its own
    ("<exchange>.<routing key> process"), so traces read the same whichever consumed."""
    if not enabled:
        yield
        return
    carrier = {key: str(value) for key, value in (message.headers or {}).items()}
    exchange = message.exchange or "default"
    attributes: dict[str, str | int] = {
        "messaging.system": "rabbitmq",
        "messaging.operation": "process",
        "messaging.message.id": message.message_id or "",
        "messaging.message.conversation_id": message.correlation_id or "",
        "messaging.message.payload_size_bytes": len(message.body),
        "messaging.rabbitmq.destination.routing_key": message.routing_key or "",
        "messaging.destination_publish.name": message.exchange or events_exchange,
    }
    tracer = trace.get_tracer("onboarding_shared.messaging")
    with tracer.start_as_current_span(
        f"{exchange}.{message.routing_key} process",
        context=_PROPAGATOR.extract(carrier),
        kind=trace.SpanKind.CONSUMER,
        attributes=attributes,
    ):
        yield
