"""Wiring of the readiness service: `uvicorn readiness.app:create_app --factory`."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from fastapi import FastAPI

from readiness import deps as deps_module
from readiness.api import problem, router
from readiness.deps import Deps, GroupsClient
from readiness.handlers import (
    RECORD_SUBSCRIPTIONS,
    RECORDS_CONSUMER,
    SUBSCRIPTIONS,
    RecordsConsumer,
)
from readiness.settings import ReadinessSettings
from shared.servicekit.auth import JwksVerifier
from shared.servicekit.consumer import Supervisor
from shared.servicekit.runtime import Runtime, ServiceSpec, build_app


async def build_deps(s: ReadinessSettings, pool: asyncpg.Pool) -> Deps:
    return deps_module.build(s)


async def stop_deps(deps: Deps) -> None:
    if isinstance(deps.access, GroupsClient):
        await deps.access.aclose()


async def start_records_consumer(runtime: Runtime) -> None:
    """The portal's records: their own consumer, one set-based write per fetched batch."""
    s, pool = runtime.settings, runtime.pool
    assert pool is not None
    supervisor = Supervisor(
        lambda: RecordsConsumer(
            RECORDS_CONSUMER, pool, runtime.kafka, runtime.watch, RECORD_SUBSCRIPTIONS,
            deps=runtime.deps, mode=s.kafka_consumer_mode,
            max_attempts=s.consumer_max_attempts,
            retry_base_seconds=s.consumer_retry_base_seconds, batch_records=5000,
        ),
        runtime.watch,
        unassigned_grace=s.consumer_unassigned_grace_seconds,
    )
    runtime.spawn(supervisor.run(), "records-consumer-supervisor")


SPEC = ServiceSpec(
    name="readiness",
    settings_cls=ReadinessSettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    subscriptions=SUBSCRIPTIONS,
    routers=(router,),
    title="Customer Support Center: readiness",
    problems=problem,
    build_deps=build_deps,
    stop_deps=stop_deps,
    on_start=start_records_consumer,
)


def create_app(settings: ReadinessSettings | None = None, *,
               verifier: JwksVerifier | None = None) -> FastAPI:
    return build_app(SPEC, settings, verifier=verifier)
