"""Small helpers the enrollment integration tests share."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

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
    headers = dict(staff.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
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
