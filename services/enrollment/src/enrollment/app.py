"""Wiring of the enrollment service: `uvicorn enrollment.app:create_app --factory`."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx
from fastapi import FastAPI

from enrollment.api import problem, router
from enrollment.api_returning_citizens import router as returning_citizens_router
from enrollment.handlers import SUBSCRIPTIONS
from enrollment.identity_client import IdentityClient
from enrollment.service import Context
from enrollment.settings import EnrollmentSettings
from shared.servicekit.runtime import Runtime, ServiceSpec, build_app


def identity_http(s: EnrollmentSettings) -> httpx.AsyncClient:
    """One pooled client for the life of the process, with a short timeout: a person waits."""
    return httpx.AsyncClient(
        base_url=s.identity_base_url,
        timeout=httpx.Timeout(s.identity_timeout_seconds),
        limits=httpx.Limits(max_connections=s.identity_max_connections,
                            max_keepalive_connections=s.identity_max_connections),
    )


async def build_deps(s: EnrollmentSettings, pool: asyncpg.Pool) -> Context:
    return Context.from_settings(s, IdentityClient(identity_http(s)))


async def stop_deps(ctx: Context) -> None:
    await ctx.identity.aclose()


SPEC = ServiceSpec(
    name="enrollment",
    settings_cls=EnrollmentSettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    subscriptions=SUBSCRIPTIONS,
    routers=(returning_citizens_router, router),
    title="Customer Support Center: enrollment",
    problems=problem,
    build_deps=build_deps,
    stop_deps=stop_deps,
)


def create_app(settings: EnrollmentSettings | None = None) -> FastAPI:
    app: FastAPI

    async def on_start(runtime: Runtime) -> None:
        app.state.context = runtime.deps

    app = build_app(SPEC, settings, on_start=on_start)
    return app
