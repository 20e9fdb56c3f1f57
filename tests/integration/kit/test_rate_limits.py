"""Rate limits counted in PostgreSQL: shared by every instance, 429 with Retry-After.

Tests on one connection run in a transaction that is rolled back (``conn``); the
concurrent one needs many connections, so it has a database of its own (``pool``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.servicekit.errors import TooManyRequests
from shared.servicekit.limits import Rate, forget_old, hit

NOW = datetime(2026, 12, 31, 23, 30, 10, tzinfo=UTC)


async def test_the_limit_passes_then_refuses_with_the_wait(conn: asyncpg.Connection) -> None:
    rates = [Rate.per_minute(3)]
    for _ in range(3):
        await hit(conn, "match", "staff-1", rates, NOW)
    with pytest.raises(TooManyRequests) as refused:
        await hit(conn, "match", "staff-1", rates, NOW)
    assert refused.value.retry_after == 50  # the minute ends at :31:00
    assert "3 per minute" in refused.value.reason
    # another caller, and another scope, count apart
    await hit(conn, "match", "staff-2", rates, NOW)
    await hit(conn, "signin", "staff-1", rates, NOW)
    # the next window starts afresh
    await hit(conn, "match", "staff-1", rates, NOW + timedelta(minutes=1))


async def test_the_day_limit_holds_across_minutes(conn: asyncpg.Connection) -> None:
    rates = [Rate.per_minute(30), Rate.per_day(5)]
    for i in range(5):
        await hit(conn, "match", "s", rates, NOW.replace(hour=1) + timedelta(minutes=i))
    with pytest.raises(TooManyRequests) as refused:
        await hit(conn, "match", "s", rates, NOW)
    assert "5 per day" in refused.value.reason
    assert refused.value.retry_after == 30 * 60 - 10  # until midnight UTC


async def test_concurrent_hits_are_all_counted(pool: asyncpg.Pool) -> None:
    import asyncio

    rates = [Rate.per_minute(10)]

    async def one() -> bool:
        try:
            await hit(pool, "join", "c", rates, NOW)  # type: ignore[arg-type]
            return True
        except TooManyRequests:
            return False

    results = await asyncio.gather(*(one() for _ in range(25)))
    assert sum(results) == 10


async def test_old_windows_are_forgotten(conn: asyncpg.Connection) -> None:
    await hit(conn, "match", "s", [Rate.per_minute(5)], NOW - timedelta(days=3))
    await hit(conn, "match", "s", [Rate.per_minute(5)], NOW)
    assert await forget_old(conn, NOW) == 1
    assert await conn.fetchval("SELECT count(*) FROM rate_limits") == 1
