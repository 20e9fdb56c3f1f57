"""The identity service in-process, on a fresh database and the session broker."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from identity.app import create_app
from identity.deps import Deps
from identity.settings import IdentitySettings
from tests.support.stack import Servers


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def identity_env(
    database: str, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    env = {
        "CSC_ENV": "test",
        "IDENTITY_DATABASE_URL": database,
        "CSC_KAFKA_BOOTSTRAP": servers.bootstrap,
        "IDENTITY_SSN_KEYS": f"k1:{_key()}",
        "IDENTITY_SSN_ACTIVE_KEY": "k1",
        "IDENTITY_SSN_HMAC_KEY": _key(),
        "IDENTITY_DATA_KEY": _key(),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@dataclass
class IdentityApp:
    client: httpx.AsyncClient
    settings: IdentitySettings
    app: FastAPI | None = None

    @property
    def deps(self) -> Deps:
        """The running service's deps (tests pin its clock or its limits here)."""
        assert self.app is not None
        deps: Deps = self.app.state.runtime.deps
        return deps

    async def sign_in(self, username: str, password: str) -> httpx.Response:
        return await self.client.post(
            "/v1/auth/token", data={"username": username, "password": password})

    async def token(self, username: str, password: str) -> str:
        r = await self.sign_in(username, password)
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])


@pytest_asyncio.fixture
async def identity(identity_env: dict[str, str]) -> AsyncIterator[IdentityApp]:
    settings = IdentitySettings()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://identity") as client:
            yield IdentityApp(client, settings, app)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
