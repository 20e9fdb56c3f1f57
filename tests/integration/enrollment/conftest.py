"""A real identity (uvicorn on a free port, its own fresh database) and the enrollment
service in-process on another fresh database, both on the session's broker.

Enrollment verifies tokens against identity's published JWKS and calls identity over
HTTP, exactly as in production; it learns staff and customers from identity's events.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI

from enrollment.app import create_app as create_enrollment
from enrollment.settings import EnrollmentSettings
from identity.app import create_app as create_identity
from identity.deps import Deps
from identity.service.accounts import create_staff
from identity.settings import IdentitySettings
from shared.servicekit.db import create_pool
from tests.support.databases import drop_database, fresh_database
from tests.support.kit import wait_until
from tests.support.stack import Servers

STAFF_PASSWORD = "correct horse battery staple 42"
NEW_PASSWORD = "a long and memorable passphrase"
RC = "returning-citizens"


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest_asyncio.fixture
async def identity_database(servers: Servers) -> AsyncIterator[str]:
    name = await fresh_database(servers)
    yield servers.pg_dsn(name)
    await drop_database(servers, name)


class IdentityServer:
    """identity over real HTTP; ``stop()`` takes it away (connections are then refused)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(
            app, lifespan="on", log_config=None, access_log=False))
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()
                raise RuntimeError("identity stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.server.should_exit = True
            await asyncio.wait_for(self.task, 15)
        self.sock.close()


@dataclass
class Staffer:
    id: uuid.UUID
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


@dataclass
class Stack:
    servers: Servers
    identity: IdentityServer
    identity_settings: IdentitySettings
    identity_pool: asyncpg.Pool
    pool: asyncpg.Pool
    app: FastAPI
    client: httpx.AsyncClient   # enrollment, in-process
    ident: httpx.AsyncClient    # identity, over HTTP
    _admin: Staffer | None = field(default=None)

    async def token(self, username: str, password: str = STAFF_PASSWORD) -> str:
        r = await self.ident.post("/v1/auth/token",
                                  data={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    async def new_staff(self, username: str, *roles: str, known: bool = True) -> Staffer:
        staff_id = await create_staff(
            self.identity_pool, Deps.from_settings(self.identity_settings),
            username=username, first_name="Robin", last_name="Case", email=None,
            roles=list(roles), password=STAFF_PASSWORD)
        if known:
            await self.wait_known(staff_id)
        return Staffer(staff_id, username, await self.token(username))

    async def wait_known(self, staff_id: uuid.UUID) -> None:
        """Until enrollment has consumed identity's StaffAccountCreated."""
        async def known() -> bool:
            return bool(await self.pool.fetchval("SELECT true FROM staff WHERE id = $1",
                                                 staff_id))
        await wait_until(known, timeout=20, interval=0.02)

    async def admin(self) -> Staffer:
        if self._admin is None:
            self._admin = await self.new_staff("admin1", "admin")
        return self._admin

    async def authorize(self, staff: Staffer, program: str = RC) -> None:
        admin = await self.admin()
        r = await self.client.put(f"/v1/programs/{program}/staff/{staff.id}",
                                  headers=admin.headers)
        assert r.status_code in (200, 201), r.text

    async def reentry_worker(self, username: str = "rcase", *roles: str) -> Staffer:
        """A staff member with the reentry role, authorized for Returning Citizens."""
        staff, _ = await asyncio.gather(self.new_staff(username, *(roles or ("reentry",))),
                                        self.admin())
        await self.authorize(staff)
        return staff

    async def all_published(self) -> bool:
        return bool(await self.pool.fetchval(
            "SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"))


def stack_env(servers: Servers, identity_dsn: str, enrollment_dsn: str) -> dict[str, str]:
    return {
        "CSC_ENV": "test",
        "CSC_KAFKA_BOOTSTRAP": servers.bootstrap,
        "CSC_KAFKA_CONSUMER_MODE": "assign",
        "CSC_BROKER_CHECK_INTERVAL": "0.5",
        "IDENTITY_DATABASE_URL": identity_dsn,
        "IDENTITY_SSN_KEYS": f"k1:{_key()}",
        "IDENTITY_SSN_ACTIVE_KEY": "k1",
        "IDENTITY_SSN_HMAC_KEY": _key(),
        "IDENTITY_DATA_KEY": _key(),
        "IDENTITY_OUTBOX_POLL_INTERVAL": "0.2",
        "ENROLLMENT_DATABASE_URL": enrollment_dsn,
        # identity hashes a password per new account: on a loaded test machine that can
        # pass the production 2.5 s (the timeout tests set their own)
        "ENROLLMENT_IDENTITY_TIMEOUT_SECONDS": "10",
        "ENROLLMENT_OUTBOX_POLL_INTERVAL": "0.2",
    }


@pytest_asyncio.fixture
async def stack(
    servers: Servers, database: str, identity_database: str, monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Stack]:
    for k, v in stack_env(servers, identity_database, database).items():
        monkeypatch.setenv(k, v)
    identity_settings = IdentitySettings()
    identity = IdentityServer(create_identity(identity_settings))
    await identity.start()
    monkeypatch.setenv("CSC_JWKS_URL", f"{identity.url}/.well-known/jwks.json")
    settings = EnrollmentSettings()
    assert settings.identity_base_url == identity.url
    app = create_enrollment(settings)
    pool = await create_pool(database, min_size=1, max_size=4)
    id_pool = await create_pool(identity_database, min_size=1, max_size=4)
    try:
        async with app.router.lifespan_context(app), \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://enrollment") as client, \
                httpx.AsyncClient(base_url=identity.url, timeout=30) as ident:
            yield Stack(servers, identity, identity_settings, id_pool, pool, app, client, ident)
    finally:
        await identity.stop()
        await pool.close()
        await id_pool.close()


def form(**changes: Any) -> dict[str, Any]:
    """A good Add Customer form; ``changes`` replace fields (None removes one)."""
    body: dict[str, Any] = {
        "parent_institution": "kewanee-lsrc",
        "idoc_number": "R12345",
        "idoc_number_confirmation": "r12345",
        "first_name": "Marcus",
        "last_name": "Oneil",
        "ssn": "219-09-9999",
        "date_of_birth": "1988-04-12",
        "counties_of_commitment": ["cook", "will"],
        "msr_date": "2026-01-15",
        "msr_county": "cook",
        "offenses": ["burglary", "drug-possession"],
        "enrollment_date": "2025-11-03",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}
