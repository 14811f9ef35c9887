"""The composition root every service shares: one lifespan wires database, Kafka, outbox and HTTP."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI, Request, Response
from faststream.kafka import KafkaBroker
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from assent_shared import kafka, topics, tracing
from assent_shared.auth import TokenVerifier
from assent_shared.clients import Forwarding
from assent_shared.inbox import Inbox
from assent_shared.lag import LagMonitor
from assent_shared.limits import BodyLimit
from assent_shared.logs import configure_logging
from assent_shared.metrics import Metrics
from assent_shared.migrate import SHARED, MigrationSet, apply_migrations
from assent_shared.observability import Observe
from assent_shared.outbox import OutboxRelay
from assent_shared.problems import install_problem_handlers, problem_response
from assent_shared.revocations import Revocations
from assent_shared.revocations import follow as follow_revocations
from assent_shared.settings import ServiceSettings
from assent_shared.supervise import Run, Supervisor
from assent_shared.topics import TopicSpec, dead_letter_topic

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    """What a running service instance holds; built in the lifespan, never at import time."""

    settings: ServiceSettings
    pool: asyncpg.Pool
    broker: KafkaBroker
    producer: AIOKafkaProducer
    metrics: Metrics
    inbox: Inbox
    verifier: TokenVerifier
    tracer: trace.Tracer
    supervisor: Supervisor
    forwarding: Forwarding
    stoppers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def spawn(self, run: Run, name: str) -> None:
        """Run a background task under supervision: restarted after a crash, readiness red meanwhile.
        `run` makes the coroutine (`dispatcher.run`, `lambda: metrics.observe(pool)`)."""
        self.supervisor.start(name, run)

    def on_stop(self, stop: Callable[[], Awaitable[None]]) -> None:
        """Run `stop` at shutdown, after background tasks have ended."""
        self.stoppers.append(stop)


@dataclass(frozen=True)
class ServiceDefinition:
    settings: ServiceSettings
    title: str
    migrations: MigrationSet
    topics: Sequence[TopicSpec]
    routers: Sequence[APIRouter]
    wire: Callable[[Runtime], Awaitable[Any]]
    """Builds the service's handlers, registers its subscribers; returns what routes use (app.state.service)."""


def create_app(definition: ServiceDefinition) -> FastAPI:
    settings = definition.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.service_name, settings.log_level)
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=settings.db_pool_max)
        async with pool.acquire() as conn:
            await apply_migrations(conn, [SHARED, definition.migrations])
        declared = [*definition.topics, *([] if topics.SESSIONS in definition.topics else [topics.SESSIONS])]
        await kafka.ensure_topics(settings, declared, extra=[dead_letter_topic(settings.service_name)])
        metrics: Metrics = app.state.metrics
        producer = kafka.make_producer(settings)
        await producer.start()
        broker = kafka.make_broker(settings)
        tracer: trace.Tracer = app.state.tracer
        revocations = Revocations()
        runtime = Runtime(
            settings=settings,
            pool=pool,
            broker=broker,
            producer=producer,
            metrics=metrics,
            inbox=Inbox(pool, metrics, kafka.dead_letterer(settings, producer), tracer=tracer),
            verifier=TokenVerifier(settings.jwks_url, settings.jwt_issuer, revocations, settings.jwks_cache_seconds),
            tracer=tracer,
            supervisor=Supervisor(metrics.registry, settings.task_restart_min_seconds,
                                  settings.task_restart_max_seconds),
            forwarding=forwarding_of(settings),
        )
        app.state.runtime = runtime
        app.state.service = await definition.wire(runtime)
        await broker.start()
        lag = LagMonitor(settings.kafka_bootstrap_servers, settings.group_id, metrics.registry,
                         settings.lag_poll_seconds)
        runtime.spawn(lag.run, "consumer-lag")
        runtime.spawn(lambda: follow_revocations(settings, revocations), "session-revocations")
        relay = OutboxRelay(settings.database_url, producer, settings.topic, metrics, settings.relay_poll_seconds,
                            settings.outbox_keep_published_seconds)
        relay_task = runtime.supervisor.start("outbox-relay", relay.run) if settings.relay_enabled else None
        log.info("service started", topics_prefix=settings.topic_prefix or None)
        try:
            yield
        finally:
            await broker.stop()
            if relay_task is not None:
                relay.stop()
                try:
                    await asyncio.wait_for(relay_task, timeout=15)
                except TimeoutError:
                    log.warning("outbox relay did not finish its batch in time")
            await runtime.supervisor.stop()
            for stop in runtime.stoppers:
                await stop()
            await producer.stop()
            await pool.close()
            app.state.tracer_provider.shutdown()
            log.info("service stopped")

    app = FastAPI(title=definition.title, lifespan=lifespan)
    app.state.metrics = Metrics(settings.service_name)
    app.state.tracer_provider = tracing.make_provider(settings.service_name, settings.otlp_endpoint)
    app.state.tracer = app.state.tracer_provider.get_tracer("assent")
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Observe)  # outermost: refused bodies are counted and traced too
    app.include_router(_health_router())
    for router in definition.routers:
        app.include_router(router)
    return app


def forwarding_of(settings: ServiceSettings) -> Forwarding:
    """Forwarded headers count from the listed proxies; outside production a service that says it is
    behind a proxy but lists none trusts any peer (settings refuse that in production)."""
    return Forwarding(settings.trusted_proxies if settings.trust_forwarded_for else (),
                      trust_any_peer=settings.trust_forwarded_for and settings.environment != "production")


def _health_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/health/ready", responses={503: {"description": "Database or Kafka not reachable"}})
    async def ready(request: Request) -> Response:
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        checks = {"database": False, "kafka": False, "background_tasks": False}
        down: list[str] = []
        if runtime is not None:
            down = runtime.supervisor.down()
            checks["background_tasks"] = not down
            try:
                async with asyncio.timeout(2):
                    checks["database"] = await runtime.pool.fetchval("SELECT 1") == 1
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass
            checks["kafka"] = await runtime.broker.ping(timeout=2)
        if all(checks.values()):
            return Response('{"status":"ready"}', media_type="application/json")
        return problem_response(503, "Not ready", checks=checks, tasks_down=down)

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
