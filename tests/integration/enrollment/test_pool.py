"""Add Customer while identity is slow: no pooled connection waits on identity, so the
rest of the service keeps answering; with every pooled connection taken a request is
answered 503 in time (not left hanging), and the consumer, on its own connections,
keeps applying events."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx

from tests.integration.enrollment.conftest import Stack, Staffer, form
from tests.integration.enrollment.helpers import IdentityStandIn, submit, use_identity
from tests.support.kit import wait_until


def person(i: int) -> dict[str, Any]:
    idoc = f"P{i:05d}"
    return form(idoc_number=idoc, idoc_number_confirmation=idoc, first_name=f"Pat{'a' * i}",
                last_name="Quinn", ssn=None, date_of_birth=f"19{60 + i}-02-0{1 + i % 9}")


async def test_add_customers_waiting_on_identity_do_not_hold_the_pool(stack: Stack) -> None:
    staff = await stack.reentry_worker()
    pool_size = stack.app.state.runtime.pool.get_max_size()
    n = pool_size + 2  # more intakes waiting on identity than the pool has connections
    stand_in = IdentityStandIn(hold=lambda r: r.method == "POST")
    identity_before = stack.app.state.runtime.deps.identity
    client = use_identity(stack.app, stand_in)

    async def step_1(i: int) -> httpx.Response:
        return await stack.client.post("/v1/returning-citizens/matches", json=person(i),
                                       headers=staff.headers)

    async def step_2(i: int) -> httpx.Response:
        return await submit(stack, staff, person(i), key=f"slow-{i}")

    try:
        intakes = [asyncio.create_task(step_1(i) if i % 2 else step_2(i)) for i in range(n)]
        try:
            async def all_at_identity() -> bool:
                return stand_in.waiting == n

            await wait_until(all_at_identity, timeout=30, interval=0.02)
            async with asyncio.timeout(20):  # guards a hang; the answer should be prompt
                r = await stack.client.get("/v1/returning-citizens", headers=staff.headers)
            assert r.status_code == 200, r.text
            async with asyncio.timeout(20):
                r = await stack.client.get("/v1/reference/counties", headers=staff.headers)
            assert r.status_code == 200, r.text
        finally:
            stand_in.release()
            answers = await asyncio.gather(*intakes, return_exceptions=True)
    finally:
        stack.app.state.runtime.deps = dataclasses.replace(
            stack.app.state.runtime.deps, identity=identity_before)
        await client.aclose()
    for i, a in enumerate(answers):
        assert isinstance(a, httpx.Response), a
        assert a.status_code == (200 if i % 2 else 201), a.text
    assert await stack.pool.fetchval("SELECT count(*) FROM enrollments") == (n + 1) // 2


async def test_with_the_pool_exhausted_a_request_gets_503_and_events_still_apply(
        stack: Stack) -> None:
    staff = await stack.reentry_worker()
    pool = stack.app.state.runtime.pool
    taken = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        async with asyncio.timeout(30):  # guards a hang
            r = await stack.client.get("/v1/returning-citizens", headers=staff.headers)
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith("/database-busy")
        assert r.headers["retry-after"]
        # the consumer has its own connections: a new staff member still becomes known
        late: Staffer = await stack.new_staff("late", "staff", known=True)
        assert late.id
    finally:
        for conn in taken:
            await pool.release(conn)
    r = await stack.client.get("/v1/returning-citizens", headers=staff.headers)
    assert r.status_code == 200
