"""What every service process is made of: the HTTP app, the broker with its consumers, the
outbox relay, their start and graceful stop, health and readiness, and the command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from aio_pika.exceptions import AMQPConnectionError
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from faststream.rabbit import Channel, RabbitBroker
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from onboarding_shared.auth import TokenVerificationSettings
from onboarding_shared.body_limit import BodyLimitMiddleware, route_limits
from onboarding_shared.contract import mail_exchange_for
from onboarding_shared.contract.asyncapi import ServiceEvents, service_document
from onboarding_shared.correlation import use_correlation_id
from onboarding_shared.db import create_engine, session_factory
from onboarding_shared.http_errors import (
    answer_outages_with_503,
    answer_validation_errors_without_input,
)
from onboarding_shared.messaging.broadcast import LatestBroadcast
from onboarding_shared.messaging.consumer import ReliableConsumer
from onboarding_shared.messaging.outbox import OutboxRelay
from onboarding_shared.messaging.publisher import RabbitPublisher
from onboarding_shared.messaging.queues import (
    ConsumerQueuesGate,
    declare_other_consumer_queues,
)
from onboarding_shared.messaging.topology import (
    ConsumerQueue,
    declare_consumer_queue,
    declare_events_exchange,
)
from onboarding_shared.messaging.trust import BusIdentity
from onboarding_shared.observability import (
    OUTBOX_OLDEST_PENDING_AGE,
    OUTBOX_PENDING,
    configure_logging,
    log_context,
)
from onboarding_shared.schema import migrate, read_schema_state, wait_for_schema
from onboarding_shared.settings import ServiceSettings, redact_url
from onboarding_shared.tracing import broker_middlewares, enable_tracing, instrument_http
from onboarding_shared.unit_of_work import MessagingTables, SqlAlchemyUnitOfWork

log = logging.getLogger(__name__)

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
UnitOfWorkT = TypeVar("UnitOfWorkT", bound=SqlAlchemyUnitOfWork)

CORRELATION_HEADER = "X-Correlation-ID"
_SAFE_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


def build_broker(settings: ServiceSettings, *, service: str) -> RabbitBroker:
    return RabbitBroker(
        settings.amqp_url,
        # Confirms are on by default; unroutable messages must fail the publish too.
        default_channel=Channel(publisher_confirms=True, on_return_raises=True),
        graceful_timeout=settings.graceful_timeout_seconds,
        app_id=service,
        timeout=5,
        reconnect_interval=2.0,
        # Our JSON logs, and per-message access lines only at DEBUG: logins are a busy stream.
        logger=logging.getLogger(f"{service}.broker"),
        log_level=logging.DEBUG,
        middlewares=broker_middlewares(settings.otel_enabled),
    )


BackgroundJob = Callable[[], Coroutine[Any, Any, None]]


def periodic(seconds: float, action: Callable[[], Awaitable[None]], *, what: str) -> BackgroundJob:
    """A background job running ``action`` every ``seconds``; a failure is logged once, when
    it starts failing, not on every round."""

    async def run_forever() -> None:
        failing = False
        while True:
            try:
                await action()
                failing = False
            except Exception as error:
                if not failing:
                    log.warning(
                        "background job failed; retrying",
                        extra={"job": what, "error": type(error).__name__},
                    )
                failing = True
            await asyncio.sleep(seconds)

    return run_forever


@dataclass
class ServiceRuntime:
    """The long-lived parts of one service process, started and stopped together."""

    service: str
    settings: ServiceSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    broker: RabbitBroker
    publisher: RabbitPublisher
    relay: OutboxRelay
    tables: MessagingTables
    consumers: list[ReliableConsumer] = field(default_factory=list)
    # State other services broadcast, kept in memory (not consumed: nothing to retry or park).
    broadcasts: list[LatestBroadcast[Any]] = field(default_factory=list)
    # Declared but not consumed (yet): their messages wait, e.g. emails while SMTP is unset.
    dormant_queues: list[ConsumerQueue] = field(default_factory=list)
    background: list[BackgroundJob] = field(default_factory=list)
    # Run once, in order, before anything consumes or serves (e.g. seeding the first account).
    startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Run once consuming has stopped (e.g. closing pooled connections to an SMTP server).
    shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Whether it publishes mailer-only requests: then it makes sure their exchange exists.
    publishes_mail: bool = False
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    consumers_gate: ConsumerQueuesGate | None = None

    @classmethod
    def create(
        cls, service: str, settings: ServiceSettings, tables: MessagingTables
    ) -> ServiceRuntime:
        if settings.otel_enabled:
            enable_tracing(service)
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        sessions = session_factory(engine)
        broker = build_broker(settings, service=service)
        publisher = RabbitPublisher(
            broker,
            settings.events_exchange,
            timeout=settings.publish_timeout_seconds,
            user_id=settings.broker_user,
        )
        # No event goes out before every queue the contract says consumes it exists: another
        # service may not have started yet (messaging/queues.py).
        gate = ConsumerQueuesGate(
            queue_prefix=settings.queue_prefix, timeout=settings.publish_timeout_seconds
        )
        relay = OutboxRelay(
            sessions, tables.outbox, publisher, settings.relay, hold_back=gate.check
        )
        runtime = cls(service, settings, engine, sessions, broker, publisher, relay, tables)
        runtime.consumers_gate = gate
        runtime.background.append(
            periodic(
                settings.metrics_refresh_seconds,
                runtime.refresh_outbox_gauges,
                what="reading outbox statistics",
            )
        )
        return runtime

    @property
    def identity(self) -> BusIdentity:
        return BusIdentity(
            service=self.service,
            broker_user=self.settings.broker_user,
            producer_users=self.settings.producer_users,
        )

    def units_of_work(
        self, unit_of_work: Callable[..., UnitOfWorkT], **adapters: Any
    ) -> Callable[[], UnitOfWorkT]:
        """How the service makes a unit of work: on this process's database, staging events
        as this service, waking the relay when it commits. ``adapters`` go to the service's
        own unit of work (metrics hooks, locks)."""
        return partial(
            unit_of_work,
            self.sessions,
            self.tables,
            producer=self.service,
            on_commit=self.relay.notify,
            **adapters,
        )

    def _broker_returned(self, *_: Any) -> None:
        # What backed off while the broker was away goes out now, not when its backoff ends.
        self.relay.broker_returned()

    async def refresh_outbox_gauges(self) -> None:
        stats = await self.relay.stats()
        OUTBOX_PENDING.set(stats.pending)
        OUTBOX_OLDEST_PENDING_AGE.set(stats.oldest_pending_age_seconds)

    async def start(self) -> None:
        for step in self.startup:
            await step()
        for broadcast in self.broadcasts:
            broadcast.subscribe(self.broker, self.identity)
        try:
            connection = await self.broker.connect()
        except (AMQPConnectionError, OSError) as error:
            raise SystemExit(
                f"cannot reach RabbitMQ at {redact_url(self.settings.amqp_url)} ({error}); "
                "start it (e.g. `rabbitmq-server -detached`) or set AMQP_URL"
            ) from None
        connection.reconnect_callbacks.add(self._broker_returned)
        if self.consumers_gate is not None:
            self.consumers_gate.attach(connection)
        async with connection.channel() as channel:
            await declare_events_exchange(channel, self.settings.events_exchange)
            if self.publishes_mail:
                await declare_events_exchange(
                    channel, mail_exchange_for(self.settings.events_exchange)
                )
            own = [consumer.queue for consumer in self.consumers] + self.dormant_queues
            for queue in own:
                await declare_consumer_queue(channel, queue)
        await declare_other_consumer_queues(
            connection, self.settings, own={queue.name for queue in own}
        )
        await self.broker.start()
        for consumer in self.consumers:
            await consumer.start(
                self.broker, connection, self.identity, traced=self.settings.otel_enabled
            )
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        for job in self.background:
            self._tasks.append(asyncio.create_task(job()))
        log.info("service started", extra={"queues": [c.queue.name for c in self.consumers]})

    async def stop(self) -> None:
        """Stop consuming (in-flight handlers finish or are redelivered), then the relay's last
        batch, then the connections: the broker's last, so that batch can still go out."""
        graceful = self.settings.graceful_timeout_seconds
        await asyncio.gather(
            *(consumer.stop(graceful) for consumer in self.consumers),
            *(subscriber.stop() for subscriber in self.broker.subscribers),
            return_exceptions=True,
        )
        if self.consumers_gate is not None:
            self.consumers_gate.detach()
        self.relay.stop()
        for task in self._tasks:
            if task.get_name() != "outbox-relay":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.broker.stop()
        for step in self.shutdown:
            try:
                await step()
            except Exception:  # a goodbye that fails must not stop the rest of the shutdown
                log.exception("a shutdown step failed")
        await self.engine.dispose()
        log.info("service stopped")

    async def ready(self) -> tuple[bool, dict[str, str]]:
        """Ready to serve when the database answers. The broker is reported, not required:
        while it is away requests still succeed and their events wait in the outbox, so taking
        every replica out of the Service for it would turn a broker outage into a full one."""
        checks = {"database": "ok", "broker": "ok"}
        try:
            async with asyncio.timeout(2), self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as error:
            checks["database"] = f"unavailable: {type(error).__name__}"
        if not await self.broker.ping(timeout=2):
            checks["broker"] = "unavailable: events wait in the outbox"
        return checks["database"] == "ok", checks


class CorrelationMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        given = request.headers.get(CORRELATION_HEADER, "")
        correlation_id = given if _SAFE_CORRELATION.match(given) else str(uuid.uuid4())
        use_correlation_id(correlation_id)
        with log_context(correlation_id=correlation_id):
            response = await call_next(request)
        response.headers[CORRELATION_HEADER] = correlation_id
        return response


async def metrics(_request: Request) -> Response:
    """The Prometheus registry in the classic text format, whatever the scraper prefers:
    OpenMetrics would refuse a gauge named like a counter without its _total
    (onboarding_invitations beside onboarding_invitations_total)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def create_http_app(
    runtime: ServiceRuntime,
    routers: Sequence[APIRouter],
    *,
    title: str,
    events: ServiceEvents | None = None,
    context: object = None,
) -> FastAPI:
    """The service's HTTP app; ``context`` is what its routes get from ``request.app.state``."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    if events is not None:
        runtime.publishes_mail = any(event.spec.mail_only for event in events.sends)
    app = FastAPI(title=title, lifespan=lifespan)
    _add_middlewares(app, runtime, routers)
    answer_validation_errors_without_input(app)
    answer_outages_with_503(app)
    app.state.runtime = runtime
    app.state.context = context
    if isinstance(runtime.settings, TokenVerificationSettings):
        app.state.token_verifier = runtime.settings.token_verifier()
    _serve_operations(app, runtime)
    if events is not None:
        _serve_asyncapi(app, service_document(events, exchange=runtime.settings.events_exchange))
    if runtime.settings.otel_enabled:
        instrument_http(app)
    for router in routers:
        app.include_router(router)
    return app


def _add_middlewares(app: FastAPI, runtime: ServiceRuntime, routers: Sequence[APIRouter]) -> None:
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=runtime.settings.max_body_bytes,
        overrides=route_limits(routers, runtime.settings),
    )
    app.add_middleware(CorrelationMiddleware)


def _serve_operations(app: FastAPI, runtime: ServiceRuntime) -> None:
    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"])
    async def ready() -> JSONResponse:
        """503 unless the database answers; the broker's state is reported beside it."""
        serving, checks = await runtime.ready()
        return JSONResponse(
            {"status": "ok" if serving else "unavailable", **checks},
            status_code=200 if serving else 503,
        )

    # Both spellings answer 200: scrapers are configured with either.
    app.add_route("/metrics", metrics, include_in_schema=False)
    app.add_route("/metrics/", metrics, include_in_schema=False)


def service_context(request: Request) -> Any:
    """The service's context, as its bootstrap gave it to create_http_app. Routes depend on
    it through their own typed alias: ``Annotated[UsersContext, Depends(service_context)]``."""
    return request.app.state.context


def _serve_asyncapi(app: FastAPI, document: dict[str, Any]) -> None:
    @app.get("/asyncapi.json", tags=["operations"])
    async def asyncapi() -> JSONResponse:
        """The events this service publishes and consumes (AsyncAPI 3.0). Documentation
        only: nothing here publishes."""
        return JSONResponse(document)


def run_cli(
    *,
    service: str,
    load: Callable[[], SettingsT],
    create_app: Callable[[SettingsT], FastAPI],
    migrations: Path,
) -> None:
    """`<service> migrate` applies migrations; `<service> serve [--migrate]` runs the service
    once the schema is at this release's head; `<service> check [--schema]` validates the
    settings (and the schema) and exits."""
    arguments = _cli_parser(service).parse_args()
    settings = load()
    configure_logging(settings.log_level, service=service, json_lines=settings.log_format == "json")
    if arguments.command == "check":
        _check(service, settings, create_app, migrations, schema=arguments.schema)
        return
    if arguments.command == "migrate" or arguments.migrate:
        migrate(settings.database_url, migrations)
    if arguments.command == "serve":
        _serve(settings, create_app, migrations)


def _cli_parser(service: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"onboarding-{service}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply database migrations and exit")
    serve = commands.add_parser("serve", help="run the HTTP API and the consumers")
    serve.add_argument("--migrate", action="store_true", help="apply migrations first")
    check = commands.add_parser(
        "check", help="validate the settings and build the service without starting it"
    )
    check.add_argument(
        "--schema", action="store_true", help="also require the database schema at the head"
    )
    return parser


def _serve(
    settings: SettingsT, create_app: Callable[[SettingsT], FastAPI], migrations: Path
) -> None:
    asyncio.run(
        wait_for_schema(settings.database_url, migrations, timeout=settings.schema_wait_seconds)
    )
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.graceful_timeout_seconds),
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
    )


def _check(
    service: str,
    settings: SettingsT,
    create_app: Callable[[SettingsT], FastAPI],
    migrations: Path,
    *,
    schema: bool,
) -> None:
    # Building the app parses keys and wires every part without connecting to anything.
    create_app(settings)
    if schema:
        state = asyncio.run(read_schema_state(settings.database_url, migrations))
        if not state.servable:
            raise SystemExit(f"onboarding-{service}: {state.describe()}")
    print(f"onboarding-{service}: settings valid" + (", schema current" if schema else ""))
