"""Wiring one service: pool, migrations, broker watch, relay, consumers, routes.

Each service's ``app.py`` declares a :class:`ServiceSpec` and calls
:func:`build_app`. Nothing connects at import: the lifespan does it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from shared.schemas.registry import all_topics
from shared.servicekit.auth import JwksVerifier
from shared.servicekit.broker import BrokerWatch, KafkaConfig
from shared.servicekit.clock import Clock, SystemClock
from shared.servicekit.consumer import InboxConsumer, Subscriptions, Supervisor, dlq_topic
from shared.servicekit.db import KIT_MIGRATIONS, create_pool, migrate
from shared.servicekit.errors import DomainError
from shared.servicekit.http import (
    Problem,
    RequestIdMiddleware,
    install_problem_handlers,
    problem_response,
)
from shared.servicekit.limits import BodyLimitMiddleware
from shared.servicekit.logs import configure_logging
from shared.servicekit.outbox import Outbox, OutboxRelay
from shared.servicekit.sessions import RevokedSessions, with_revocations
from shared.servicekit.sessions import load as load_revoked
from shared.servicekit.sessions import watch as watch_revoked
from shared.servicekit.settings import ServiceSettings

log = structlog.get_logger(__name__)
# routes that stream a feed's body check its size themselves
FEED_PATHS = ("/v1/feeds/",)


@dataclass(frozen=True)
class KitDeps:
    """What every service's use cases get from the kit; a service's ``deps.Deps``
    extends it with its own clients and settings."""

    clock: Clock
    outbox: Outbox


# (settings, pool) -> the service's deps, built once at start-up (and by the CLI)
DepsBuilder = Callable[[Any, asyncpg.Pool], Awaitable[Any]]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    settings_cls: type[ServiceSettings]
    migrations: Path
    subscriptions: Subscriptions = field(default_factory=dict)
    routers: tuple[APIRouter, ...] = ()
    title: str = ""
    # the service's own DomainError kinds -> Problem (None: let the kit map it)
    problems: Callable[[DomainError], Problem | None] | None = None
    # builds what use cases need once, from settings; handlers, routes, the CLI
    # and DLQ replay all get the same object (default: the kit's clock and outbox)
    build_deps: DepsBuilder | None = None
    # closes what build_deps opened (HTTP clients, SMTP pools), after the consumers stop
    stop_deps: Callable[[Any], Awaitable[None]] | None = None
    # starts the service's own background work (runtime.spawn), once deps exist
    on_start: Callable[[Runtime], Awaitable[None]] | None = None


async def build_deps(spec: ServiceSpec, settings: ServiceSettings, pool: asyncpg.Pool) -> Any:
    """The service's deps as its spec builds them (the kit's own by default)."""
    if spec.build_deps is not None:
        return await spec.build_deps(settings, pool)
    return KitDeps(clock=SystemClock(settings.zone), outbox=Outbox(spec.name))


def system_topics() -> list[str]:
    """Every topic the system uses, with its dead-letter topic: created up front."""
    topics = all_topics()
    return sorted({*topics, *(dlq_topic(t) for t in topics)})


def kafka_config(settings: ServiceSettings, name: str) -> KafkaConfig:
    return KafkaConfig(
        bootstrap=settings.kafka_bootstrap,
        partitions=settings.kafka_partitions,
        replication=settings.kafka_replication,
        client_id=name,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        compression=None if settings.kafka_compression == "none" else settings.kafka_compression,
    )


async def migrate_database(spec: ServiceSpec, dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn, [("kit", KIT_MIGRATIONS), (spec.name, spec.migrations)])
    finally:
        await conn.close()


class Runtime:
    """The running parts of one service process."""

    def __init__(self, spec: ServiceSpec, settings: ServiceSettings) -> None:
        self.spec, self.settings = spec, settings
        self.dsn = settings.database_url.get_secret_value()
        self.kafka = kafka_config(settings, spec.name)
        self.watch = BrokerWatch(
            self.kafka, topics=system_topics(), interval=settings.broker_check_interval
        )
        self.pool: asyncpg.Pool | None = None
        self.background_pool: asyncpg.Pool | None = None  # the relay's and consumers'
        self.deps: Any = None
        self.relay: OutboxRelay | None = None
        self.supervisor: Supervisor | None = None
        # sessions identity revoked: every token check of this process consults it
        self.revoked = RevokedSessions()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        s = self.settings
        applied = await migrate_database(self.spec, self.dsn)
        if applied:
            log.info("migrations_applied", migrations=applied)
        self.pool = await create_pool(
            self.dsn, min_size=s.database_pool_min, max_size=s.database_pool_max,
            acquire_timeout=s.database_acquire_timeout_seconds,
        )
        if s.database_background_pool_max:  # requests cannot starve the relay and consumers
            self.background_pool = await create_pool(
                self.dsn, min_size=1, max_size=s.database_background_pool_max)
        background = self.background_pool or self.pool
        self.deps = await build_deps(self.spec, s, self.pool)
        await load_revoked(background, self.revoked)  # before the first request
        self.spawn(watch_revoked(self.dsn, background, self.revoked,
                                 reload_seconds=s.revocation_reload_seconds),
                   "revocation-watch")
        self.relay = OutboxRelay(
            self.dsn, background, self.kafka, self.watch,
            batch_size=s.outbox_batch_size, lease_seconds=s.outbox_lease_seconds,
            poll_interval=s.outbox_poll_interval, retention_hours=s.outbox_retention_hours,
        )
        self.spawn(self.watch.run(), "broker-watch")
        self.spawn(self.relay.run(), "outbox-relay")
        # every service consumes identity's SessionRevoked (the kit's handler)
        subscriptions = with_revocations(self.spec.subscriptions)
        if subscriptions:
            pool = background
            self.supervisor = Supervisor(
                lambda: InboxConsumer(
                    self.spec.name, pool, self.kafka, self.watch, subscriptions,
                    deps=self.deps, mode=s.kafka_consumer_mode,
                    max_attempts=s.consumer_max_attempts,
                    retry_base_seconds=s.consumer_retry_base_seconds,
                ),
                self.watch,
                unassigned_grace=s.consumer_unassigned_grace_seconds,
            )
            self.spawn(self.supervisor.run(), "consumer-supervisor")

    def spawn(self, coro: Any, name: str) -> None:
        """Run a background task for the life of the service."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_log_crash)
        self._tasks.append(task)

    async def stop(self) -> None:
        pending = set(self._tasks)
        for _ in range(10):  # a task that swallowed its cancel gets asked again
            if not pending:
                break
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        if pending:
            log.error("tasks_would_not_stop", tasks=[t.get_name() for t in pending])
        self._tasks.clear()
        if self.deps is not None and self.spec.stop_deps is not None:
            try:
                await self.spec.stop_deps(self.deps)
            except Exception as exc:
                log.error("deps_would_not_stop", error=repr(exc))
        await self.watch.close()
        if self.pool is not None:
            await self.pool.close()
        if self.background_pool is not None:
            await self.background_pool.close()

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            assert self.pool is not None
            async with asyncio.timeout(2):
                await self.pool.fetchval("SELECT 1")
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        ok = self.watch.reachable and self.watch.epoch is not None
        checks["broker"] = "ok" if ok else "unavailable"
        return checks


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background_task_died", task=task.get_name(), error=repr(task.exception()))


health_router = APIRouter(tags=["health"])


@health_router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health_router.get("/readyz", response_model=None)
async def readyz(request: Request) -> Any:
    runtime: Runtime = request.app.state.runtime
    checks = await runtime.readiness()
    missing = [name for name, state in checks.items() if state != "ok"]
    if missing:
        return problem_response(
            503, "Not ready", f"unavailable: {', '.join(missing)}",
            instance="/readyz", checks=checks,
        )
    return JSONResponse({"status": "ready", "checks": checks})


def build_app(
    spec: ServiceSpec,
    settings: ServiceSettings | None = None,
    *,
    verifier: JwksVerifier | None = None,
    on_start: Callable[[Runtime], Any] | None = None,
) -> FastAPI:
    """The service's FastAPI app. ``settings`` default to the environment."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings or spec.settings_cls()
        configure_logging(spec.name, env=s.env, level=s.log_level, fmt=s.log_format)
        runtime = Runtime(spec, s)
        app.state.runtime = runtime
        app.state.settings = s
        # the service is its own audience: a token must name it in ``aud``
        app.state.verifier = verifier or JwksVerifier(
            s.jwks_url, issuer=s.jwt_issuer, audience=spec.name,
            cache_seconds=s.jwks_cache_seconds,
        )
        app.state.verifier.revoked = runtime.revoked
        await runtime.start()
        if spec.on_start is not None:
            await spec.on_start(runtime)
        if on_start is not None:
            await on_start(runtime)
        log.info("service_started", service=spec.name)
        try:
            yield
        finally:
            await runtime.stop()
            log.info("service_stopped", service=spec.name)

    app = FastAPI(title=spec.title or spec.name, lifespan=lifespan)
    app.add_middleware(BodyLimitMiddleware, exempt=FEED_PATHS)
    app.add_middleware(RequestIdMiddleware)
    install_problem_handlers(app, spec.problems)
    app.include_router(health_router)
    for router in spec.routers:
        app.include_router(router)
    return app


async def get_pool(request: Request) -> asyncpg.Pool:
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, every request
    pool: asyncpg.Pool | None = request.app.state.runtime.pool
    assert pool is not None
    return pool


Pool = Annotated[asyncpg.Pool, Depends(get_pool)]


async def get_deps(request: Request) -> Any:
    """The service's deps (built once at start-up by its ServiceSpec.build_deps)."""
    return request.app.state.runtime.deps

