"""Tracing (OTEL_ENABLED=true) on the real broker, PostgreSQL and SMTP server: one invitation
is one trace, from the API call through the outbox, the broker and the mailer to the SMTP
send. Spans are kept in memory by the SDK's InMemorySpanExporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from invitations.bootstrap import MIGRATIONS as INVITATIONS_MIGRATIONS
from invitations.bootstrap import create_app as create_invitations
from invitations.settings import InvitationsSettings
from mailer.bootstrap import MIGRATIONS as MAILER_MIGRATIONS
from mailer.bootstrap import create_app as create_mailer
from mailer.settings import MailerSettings
from tests.support.auth import admin_headers, verifier_settings
from tests.support.broker import Namespace, eventually
from tests.support.databases import DatabaseFactory
from tests.support.factories import service_settings
from tests.support.services import in_process
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (set once per process), exporting into memory; the
    services reuse it instead of setting up OTLP."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # later tests' spans are no longer kept


def named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in spans.get_finished_spans() if span.name == name]


async def test_an_invitation_is_one_trace_from_the_api_call_to_the_smtp_send(
    spans: InMemorySpanExporter,
    databases: DatabaseFactory,
    amqp_url: str,
    namespace: Namespace,
    smtp_server: SmtpServer,
) -> None:
    traced = {"otel_enabled": True, **verifier_settings()}
    invitations = InvitationsSettings(
        **service_settings(
            namespace,
            amqp_url,
            await databases.create_migrated("invitations", INVITATIONS_MIGRATIONS),
        ),
        **traced,
    )
    mailer = MailerSettings(
        **service_settings(
            namespace, amqp_url, await databases.create_migrated("mailer", MAILER_MIGRATIONS)
        ),
        **traced,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_tls="none",
    )
    spans.clear()
    async with (
        in_process(create_mailer, mailer),
        in_process(create_invitations, invitations) as client,
    ):
        response = await client.post(
            "/api/v1/invitations", json={"emails": ["ada@example.com"]}, headers=admin_headers()
        )
        assert response.status_code == 202, response.text
        # Until the whole chain has run, its last step (EmailSent back in the invitations
        # service) included: stopping the services at the SMTP send raced that step.
        back = f"{namespace.exchange}.email.sent.v1 process"
        await eventually(lambda: named(spans, "smtp send") and named(spans, back), timeout=30)

    (request,) = [
        span for span in named(spans, "POST /api/v1/invitations") if span.kind is SpanKind.SERVER
    ]
    trace_id = request.context.trace_id
    in_trace = [span for span in spans.get_finished_spans() if span.context.trace_id == trace_id]
    names = {span.name for span in in_trace}
    (smtp,) = named(spans, "smtp send")
    assert smtp.context.trace_id == trace_id, sorted(names)
    # Between the two: the relay's publish and the mailer's consumption; after them, the
    # EmailSent that went back to the invitations service.
    requested = f"{namespace.exchange}.mail.invitation.requested.v2"
    sent = f"{namespace.exchange}.email.sent.v1"
    assert {f"{requested} publish", f"{requested} process", f"{sent} process"} <= names, names
    assert parents_of(smtp, in_trace)[-1] is request


def parents_of(span: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    """The chain of parents from ``span`` up to the root of its trace."""
    by_id = {candidate.context.span_id: candidate for candidate in spans}
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain
