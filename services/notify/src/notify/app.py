"""Wiring of the notify service: `uvicorn notify.app:create_app --factory`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI

from notify.api import router
from notify.deps import Deps
from notify.handlers import SUBSCRIPTIONS
from notify.settings import NotifySettings
from notify.worker import DeliveryWorker
from shared.servicekit.auth import JwksVerifier
from shared.servicekit.clock import Clock
from shared.servicekit.runtime import Runtime, ServiceSpec, build_app


async def build_deps(s: NotifySettings, pool: asyncpg.Pool) -> Deps:
    return Deps.from_settings(s)


async def stop_deps(deps: Deps) -> None:
    await deps.aclose()


async def on_start(runtime: Runtime) -> None:
    """The delivery worker runs for the life of the process."""
    deps: Deps = runtime.deps
    if deps.settings.worker_enabled:
        assert runtime.pool is not None
        runtime.spawn(DeliveryWorker(runtime.pool, deps).run(), "delivery-worker")


SPEC = ServiceSpec(
    name="notify",
    settings_cls=NotifySettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    subscriptions=SUBSCRIPTIONS,
    routers=(router,),
    title="Customer Support Center: notify",
    build_deps=build_deps,
    stop_deps=stop_deps,
    on_start=on_start,
)


def create_app(
    settings: NotifySettings | None = None, *, clock: Clock | None = None,
    verifier: JwksVerifier | None = None,
) -> FastAPI:
    """The app; tests pin the clock and the token keys."""
    spec = SPEC
    if clock is not None:
        async def with_clock(s: NotifySettings, pool: asyncpg.Pool) -> Deps:
            return Deps.from_settings(s, clock)
        spec = replace(SPEC, build_deps=with_clock)
    kwargs: dict[str, Any] = {"verifier": verifier} if verifier is not None else {}
    return build_app(spec, settings, **kwargs)
