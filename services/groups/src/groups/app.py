"""Wiring of the groups service: `uvicorn groups.app:create_app --factory`."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from fastapi import FastAPI

from groups.api import access, directory, invitations, messages
from groups.api import groups as groups_routes
from groups.deps import Deps
from groups.handlers import SUBSCRIPTIONS
from groups.service.messages import run_emitter
from groups.settings import GroupsSettings
from shared.servicekit.runtime import Runtime, ServiceSpec, build_app


async def build_deps(settings: GroupsSettings, pool: asyncpg.Pool) -> Deps:
    return Deps.from_settings(settings)


async def on_start(runtime: Runtime) -> None:
    assert runtime.pool is not None
    runtime.spawn(run_emitter(runtime.pool, runtime.deps), "message-emitter")


SPEC = ServiceSpec(
    name="groups",
    settings_cls=GroupsSettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    subscriptions=SUBSCRIPTIONS,
    routers=(groups_routes.router, invitations.router, access.router, messages.router,
             directory.router),
    title="Customer Support Center: groups",
    build_deps=build_deps,
    on_start=on_start,
)


def create_app(settings: GroupsSettings | None = None) -> FastAPI:
    return build_app(SPEC, settings)
