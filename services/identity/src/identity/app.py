"""Wiring of the identity service: `uvicorn identity.app:create_app --factory`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from fastapi import FastAPI

from identity.api import accounts, customers, matching, registration
from identity.api.problems import problem_for
from identity.deps import Deps
from identity.handlers import SUBSCRIPTIONS
from identity.service.accounts import LocalExchange, ensure_signing_key, load_keyring
from identity.settings import IdentitySettings
from shared.servicekit.access import GroupsAccess
from shared.servicekit.auth import JwksVerifier
from shared.servicekit.delegation import NarrowedBearer
from shared.servicekit.runtime import Runtime, ServiceSpec, build_app

KEY_RELOAD_SECONDS = 30.0


async def stop_deps(ids: Deps) -> None:
    if ids.groups_access is not None:
        await ids.groups_access.aclose()


async def build_deps(s: IdentitySettings, pool: asyncpg.Pool) -> Deps:
    # the signing keys are loaded by the app (on_start): handlers and replay need none
    ids = Deps.from_settings(s)
    # groups gets the staff member's token narrowed to groups alone
    ids.exchange = LocalExchange(ids)
    ids.groups_access = GroupsAccess.from_env(auth=NarrowedBearer(ids.exchange, "groups"))
    return ids


SPEC = ServiceSpec(
    name="identity",
    settings_cls=IdentitySettings,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    subscriptions=SUBSCRIPTIONS,
    routers=(accounts.router, customers.router, matching.router, registration.router),
    title="Customer Support Center: identity",
    problems=problem_for,
    build_deps=build_deps,
    stop_deps=stop_deps,
)


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    app: FastAPI

    async def on_start(runtime: Runtime) -> None:
        s = runtime.settings
        ids: Deps = runtime.deps
        assert isinstance(s, IdentitySettings) and runtime.pool is not None
        async with runtime.pool.acquire() as conn:
            ids.keyring = await ensure_signing_key(conn, ids)
        # identity verifies its own tokens with its own keys, no HTTP round trip
        verifier = JwksVerifier.from_jwks(
            ids.keyring.jwks(), issuer=s.jwt_issuer, audience=SPEC.name)
        verifier.revoked = runtime.revoked
        app.state.verifier = verifier
        if ids.exchange is not None:
            ids.exchange.verifier = verifier
        runtime.spawn(_reload_keys(runtime, ids, verifier), "signing-key-reload")

    app = build_app(SPEC, settings, on_start=on_start)
    return app


async def _reload_keys(runtime: Runtime, ids: Deps, verifier: JwksVerifier) -> None:
    """Pick up keys rotated by another instance or by `csc identity rotate-keys`."""
    assert runtime.pool is not None
    while True:
        await asyncio.sleep(KEY_RELOAD_SECONDS)
        async with runtime.pool.acquire() as conn:
            ring = await load_keyring(conn, ids.kek)
        # the verifier first, then the published JWKS: a key that left the JWKS never
        # still verifies here
        verifier.replace_keys(ring.jwks())
        ids.keyring = ring
