"""Small helpers the enrollment integration tests share."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx

from enrollment.repository.identity import IdentityClient
from shared.schemas.envelope import Envelope
from tests.integration.enrollment.conftest import Stack, Staffer, form

TABLES = ("enrollments", "returning_citizens", "returning_citizen_offenses", "applications",
          "enrollment_history", "audit_log", "intake_requests", "customers", "outbox")


async def row_counts(pool: asyncpg.Pool) -> dict[str, int]:
    return {t: int(await pool.fetchval(f"SELECT count(*) FROM {t}")) for t in TABLES}


async def identity_customers(stack: Stack) -> int:
    return int(await stack.identity_pool.fetchval("SELECT count(*) FROM customers"))


async def match(stack: Stack, staff: Staffer, body: dict[str, Any] | None = None
                ) -> httpx.Response:
    return await stack.client.post("/v1/returning-citizens/matches",
                                   json=form() if body is None else body, headers=staff.headers)


async def submit(
    stack: Stack, staff: Staffer, body: dict[str, Any] | None = None, key: str | None = None
) -> httpx.Response:
    """Step 2, under ``key`` (a fresh one when None: the route requires one)."""
    headers = {**staff.headers, "Idempotency-Key": key or f"test-{uuid.uuid4()}"}
    return await stack.client.post("/v1/returning-citizens",
                                   json=form() if body is None else body, headers=headers)


async def enroll(stack: Stack, staff: Staffer, key: str | None = None, **changes: Any
                 ) -> dict[str, Any]:
    """Add Customer for a person with no existing account."""
    r = await submit(stack, staff, form(**changes), key)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def events(pool: asyncpg.Pool, event_type: str) -> list[Envelope]:
    rows = await pool.fetch("SELECT value FROM outbox WHERE event_type = $1 ORDER BY id",
                            event_type)
    return [Envelope.from_bytes(bytes(r["value"])) for r in rows]


def fields_of(r: httpx.Response) -> list[str]:
    return [str(e["field"]) for e in r.json()["errors"]]


class IdentityStandIn(httpx.AsyncBaseTransport):
    """The way to identity, with faults: each request goes to the real identity, but
    one that ``hold(request)`` picks waits until ``release()``, and one that
    ``lose_answer(request)`` picks is answered by identity, then lost (a timeout)."""

    def __init__(self, hold: Callable[[httpx.Request], bool] = lambda r: False,
                 lose_answer: Callable[[httpx.Request], bool] = lambda r: False) -> None:
        self.real = httpx.AsyncHTTPTransport()
        self.hold, self.lose_answer = hold, lose_answer
        self.gate = asyncio.Event()
        self.waiting = 0
        self.lost = 0

    def release(self) -> None:
        self.gate.set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.hold(request):
            self.waiting += 1
            try:
                await self.gate.wait()
            finally:
                self.waiting -= 1
        response = await self.real.handle_async_request(request)
        if self.lose_answer(request):
            await response.aread()
            await response.aclose()
            self.lost += 1
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.real.aclose()


def posts_to(path: str) -> Callable[[httpx.Request], bool]:
    return lambda r: r.method == "POST" and r.url.path == path


def use_identity(app: Any, stand_in: IdentityStandIn) -> IdentityClient:
    """The running app calls identity through ``stand_in`` from now on."""
    runtime = app.state.runtime
    old = runtime.deps.identity
    # a generous timeout: only the stand-in's faults, not a loaded machine, cut a call short
    client = IdentityClient(str(old.calls.http.base_url).rstrip("/"), timeout=30,
                            transport=stand_in, auth=old.calls.http.auth)
    runtime.deps = dataclasses.replace(runtime.deps, identity=client)
    return client
