"""Wiring of the sync-iwds service: `uvicorn sync_iwds.app:create_app --factory`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import structlog
from fastapi import FastAPI

from shared.servicekit.aio import wait_event
from shared.servicekit.auth import JwksVerifier
from shared.servicekit.runtime import Runtime, ServiceSpec, build_app
from sync_iwds import service
from sync_iwds.api import router
from sync_iwds.deps import Deps, build_deps, stop_deps
from sync_iwds.handlers import SUBSCRIPTIONS
from sync_iwds.settings import SyncIwdsSettings

log = structlog.get_logger(__name__)
APPLIER_POLL_SECONDS = 30.0


async def _build(settings: SyncIwdsSettings, pool: asyncpg.Pool) -> Deps:
    return await build_deps(settings, pool)


async def _on_start(runtime: Runtime) -> None:
    runtime.spawn(apply_forever(runtime), "iwds-applier")
    s = runtime.settings
    assert isinstance(s, SyncIwdsSettings)
    if s.identity_client_id and s.identity_client_secret is not None:
        assert runtime.pool is not None
        runtime.spawn(service.link_forever(runtime.pool, runtime.deps), "iwds-linker")


async def apply_forever(runtime: Runtime) -> None:
    """Recover runs an earlier process left behind, then apply runs staged over HTTP."""
    pool, deps = runtime.pool, runtime.deps
    assert pool is not None
    while True:
        try:
            await service.recover(pool, deps)
            break
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("iwds_recovery_failed", error=type(exc).__name__)
            await asyncio.sleep(5)
    while True:
        deps.wake_applier.clear()
        try:
            for run_id in await service.staged_runs(pool):
                await service.apply_run(pool, deps, run_id)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("iwds_apply_failed", error=type(exc).__name__)
        await wait_event(deps.wake_applier, APPLIER_POLL_SECONDS)


SPEC = ServiceSpec(
    name="sync-iwds",
    settings_cls=SyncIwdsSettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    subscriptions=SUBSCRIPTIONS,
    routers=(router,),
    title="Customer Support Center: sync-iwds",
    build_deps=_build,
    stop_deps=stop_deps,
    on_start=_on_start,
)


def create_app(settings: SyncIwdsSettings | None = None, *,
               verifier: JwksVerifier | None = None) -> FastAPI:
    return build_app(SPEC, settings, verifier=verifier)
