"""Wiring of the enrollment service: `uvicorn enrollment.app:create_app --factory`."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from fastapi import FastAPI

from enrollment.api import participants, programs, returning_citizens
from enrollment.api.problems import problem
from enrollment.deps import Deps
from enrollment.handlers import SUBSCRIPTIONS
from enrollment.repository.identity import IdentityClient
from enrollment.settings import EnrollmentSettings
from shared.servicekit.delegation import NarrowedBearer, TokenExchange
from shared.servicekit.runtime import ServiceSpec, build_app


async def build_deps(s: EnrollmentSettings, pool: asyncpg.Pool) -> Deps:
    # one pooled client for the life of the process, with a short timeout: a person waits
    # identity gets the staff member's token narrowed to identity alone
    identity = IdentityClient(s.identity_base_url, timeout=s.identity_timeout_seconds,
                              max_connections=s.identity_max_connections,
                              auth=NarrowedBearer(TokenExchange(
                                  f"{s.identity_base_url}/v1/auth/token",
                                  timeout=s.identity_timeout_seconds), "identity"))
    return Deps.from_settings(s, identity)


async def stop_deps(deps: Deps) -> None:
    await deps.identity.aclose()


SPEC = ServiceSpec(
    name="enrollment",
    settings_cls=EnrollmentSettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    subscriptions=SUBSCRIPTIONS,
    routers=(returning_citizens.router, programs.router, participants.router),
    title="Customer Support Center: enrollment",
    problems=problem,
    build_deps=build_deps,
    stop_deps=stop_deps,
)


def create_app(settings: EnrollmentSettings | None = None) -> FastAPI:
    return build_app(SPEC, settings)
