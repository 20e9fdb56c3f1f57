"""identity, groups and enrollment over real HTTP, each on its own fresh database,
all on the session's broker; a recorder stands between enrollment and identity and
between identity and groups and keeps every bearer token one service sends another.

Groups and enrollment verify identity's real tokens and learn revoked sessions from
identity's SessionRevoked events, exactly as in production.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Request, Response

from enrollment.app import create_app as create_enrollment
from enrollment.settings import EnrollmentSettings
from groups.app import create_app as create_groups
from groups.settings import GroupsSettings
from identity.app import create_app as create_identity
from identity.deps import Deps as IdentityDeps
from identity.service.accounts import create_staff
from identity.settings import IdentitySettings
from shared.servicekit.db import create_pool
from tests.integration.enrollment.conftest import (
    STAFF_PASSWORD,
    IdentityServer,
    _key,
    bearer,
    drop_database,
    fresh_database,
)
from tests.support.kit import wait_until
from tests.support.stack import Servers

RC = "returning-citizens"


@dataclass
class Seen:
    """A bearer token one service sent another, as the callee received it."""

    path: str
    token: str


def recorder(target: str, seen: list[Seen]) -> FastAPI:
    """Forwards every request to ``target`` and keeps its bearer token."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def forward(path: str, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            seen.append(Seen(request.url.path, token))
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "content-length")}
        async with httpx.AsyncClient(base_url=target, timeout=30) as client:
            r = await client.request(request.method, request.url.path,
                                     params=request.query_params, headers=headers,
                                     content=await request.body())
        kept = {k: v for k, v in r.headers.items()
                if k.lower() in ("content-type", "retry-after", "www-authenticate")}
        return Response(r.content, status_code=r.status_code, headers=kept)

    return app


@dataclass
class Person:
    id: uuid.UUID
    username: str
    token: str
    refresh_token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


@dataclass
class Stack:
    identity_settings: IdentitySettings
    identity_pool: asyncpg.Pool
    groups_pool: asyncpg.Pool
    enrollment_pool: asyncpg.Pool
    ident: httpx.AsyncClient
    groups: httpx.AsyncClient
    enrollment: httpx.AsyncClient
    to_identity: list[Seen]   # what enrollment sent identity
    to_groups: list[Seen]     # what identity sent groups
    _admin: Person | None = field(default=None)

    async def sign_in(self, username: str, password: str = STAFF_PASSWORD) -> dict[str, Any]:
        r = await self.ident.post("/v1/auth/token",
                                  data={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def new_staff(self, username: str, *roles: str) -> Person:
        """A staff member known to identity, groups and enrollment, signed in."""
        staff_id = await create_staff(
            self.identity_pool, IdentityDeps.from_settings(self.identity_settings),
            username=username, first_name="Robin", last_name="Case", email=None,
            roles=list(roles or ("staff",)), password=STAFF_PASSWORD)
        for pool in (self.groups_pool, self.enrollment_pool):
            await wait_row(pool, "SELECT true FROM staff WHERE id = $1", staff_id)
        answer = await self.sign_in(username)
        return Person(staff_id, username, answer["access_token"], answer["refresh_token"])

    async def exchange(self, token: str, *audience: str) -> httpx.Response:
        return await self.ident.post("/v1/auth/token", data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "audience": list(audience)})

    async def admin(self) -> Person:
        if self._admin is None:
            self._admin = await self.new_staff("admin1", "admin")
        return self._admin

    async def reentry_worker(self, username: str = "rcase") -> Person:
        """A staff member with the reentry role, authorized for Returning Citizens."""
        staff = await self.new_staff(username, "reentry")
        admin = await self.admin()
        r = await self.enrollment.put(f"/v1/programs/{RC}/staff/{staff.id}",
                                      headers=admin.headers)
        assert r.status_code in (200, 201), r.text
        return staff


async def wait_row(pool: asyncpg.Pool, sql: str, *args: Any, timeout: float = 20) -> None:
    async def there() -> bool:
        return bool(await pool.fetchval(sql, *args))
    await wait_until(there, timeout=timeout, interval=0.02)


@pytest_asyncio.fixture
async def stack(servers: Servers, database: str, monkeypatch: pytest.MonkeyPatch
                ) -> AsyncIterator[Stack]:
    names = [await fresh_database(servers) for _ in range(2)]
    identity_dsn, enrollment_dsn = (servers.pg_dsn(n) for n in names)
    for k, v in {
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
        "GROUPS_DATABASE_URL": database,
        "GROUPS_OUTBOX_POLL_INTERVAL": "0.2",
        "ENROLLMENT_DATABASE_URL": enrollment_dsn,
        "ENROLLMENT_OUTBOX_POLL_INTERVAL": "0.2",
        # the recorders add a hop on a loaded machine: timeouts are not what is tested
        "CSC_GROUPS_TIMEOUT_SECONDS": "10",
        "ENROLLMENT_IDENTITY_TIMEOUT_SECONDS": "10",
    }.items():
        monkeypatch.setenv(k, v)
    identity_settings = IdentitySettings()
    identity = IdentityServer(create_identity(identity_settings))
    monkeypatch.setenv("CSC_JWKS_URL", f"{identity.url}/.well-known/jwks.json")
    groups = IdentityServer(create_groups(GroupsSettings()))
    to_identity: list[Seen] = []
    to_groups: list[Seen] = []
    identity_door = IdentityServer(recorder(identity.url, to_identity))
    groups_door = IdentityServer(recorder(groups.url, to_groups))
    monkeypatch.setenv("CSC_GROUPS_URL", groups_door.url)  # identity asks groups here
    monkeypatch.setenv("ENROLLMENT_IDENTITY_URL", identity_door.url)
    enrollment = IdentityServer(create_enrollment(EnrollmentSettings()))
    servers_up = [identity, groups, identity_door, groups_door, enrollment]
    for server in servers_up:
        await server.start()
    pools = [await create_pool(dsn, min_size=1, max_size=4)
             for dsn in (identity_dsn, database, enrollment_dsn)]
    try:
        async with httpx.AsyncClient(base_url=identity.url, timeout=30) as ident, \
                httpx.AsyncClient(base_url=groups.url, timeout=30) as grp, \
                httpx.AsyncClient(base_url=enrollment.url, timeout=30) as enr:
            yield Stack(identity_settings, *pools, ident, grp, enr, to_identity, to_groups)
    finally:
        for server in reversed(servers_up):
            await server.stop()
        for pool in pools:
            await pool.close()
        for name in names:
            await drop_database(servers, name)
