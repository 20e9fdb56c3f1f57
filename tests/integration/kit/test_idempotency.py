"""The kit's one Idempotency-Key store, over a table of each shape the services use:
answers kept once done (identity), and requests under way then done (enrollment).

Tests on one connection run in a transaction that is rolled back (``conn``); the
lock test needs two connections, so it has a database of its own (``pool``)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from shared.servicekit.idempotency import IdempotencyStore
from tests.support.kit import wait_until

ONCE = IdempotencyStore("answers", kept=("status_code", "sealed_body"))
STEPS = IdempotencyStore("intakes", kept=("result_id",), started="matched")


TABLES = (
    "CREATE TABLE answers (staff_id uuid, key text, request_hash bytea NOT NULL,"
    " status_code int NOT NULL, sealed_body bytea NOT NULL, PRIMARY KEY (staff_id, key));"
    "CREATE TABLE intakes (staff_id uuid, key text, request_hash bytea NOT NULL,"
    " state text NOT NULL, result_id uuid, PRIMARY KEY (staff_id, key))"
)


@pytest.fixture
async def tables(pool: asyncpg.Pool) -> asyncpg.Pool:
    await pool.execute(TABLES)
    return pool


@pytest.fixture
async def tx(conn: asyncpg.Connection) -> None:
    """The tables, made in the test's rolled-back transaction (``conn``)."""
    await conn.execute(TABLES)


@pytest.mark.usefixtures("tx")
async def test_an_answer_is_kept_once_per_owner_and_key(conn: asyncpg.Connection) -> None:
    staff, other = uuid.uuid4(), uuid.uuid4()
    async with conn.transaction():
        await ONCE.lock(conn, staff, "k1")
        assert await ONCE.get(conn, staff, "k1") is None
        await ONCE.finish(conn, staff, "k1", b"h1", {"status_code": 201, "sealed_body": b"s"})
    kept = await ONCE.get(conn, staff, "k1")
    assert kept is not None and kept.request_hash == b"h1" and kept.state == "done"
    assert kept.values == {"status_code": 201, "sealed_body": b"s"}
    assert await ONCE.get(conn, other, "k1") is None  # keys are per owner
    with pytest.raises(TypeError):
        await ONCE.start(conn, staff, "k2", b"h")
    with pytest.raises(ValueError):
        await ONCE.finish(conn, staff, "k3", b"h", {"status_code": 201})


@pytest.mark.usefixtures("tx")
async def test_a_request_under_way_then_done_or_dropped(conn: asyncpg.Connection) -> None:
    staff, result = uuid.uuid4(), uuid.uuid4()
    assert await STEPS.start(conn, staff, "k", b"h") is True
    assert await STEPS.start(conn, staff, "k", b"other") is False  # the first one stays
    under_way = await STEPS.get(conn, staff, "k")
    assert under_way is not None and under_way.state == "matched"
    assert under_way.request_hash == b"h" and under_way.values == {"result_id": None}
    await STEPS.drop(conn, staff, "k")
    assert await STEPS.get(conn, staff, "k") is None
    assert await STEPS.start(conn, staff, "k", b"h2") is True
    await STEPS.finish(conn, staff, "k", b"h2", {"result_id": result})
    await STEPS.drop(conn, staff, "k")  # a done request is never dropped
    done = await STEPS.get(conn, staff, "k", for_update=False)
    assert done is not None and done.state == "done" and done.values == {"result_id": result}


async def test_the_lock_makes_the_second_request_wait(tables: asyncpg.Pool) -> None:
    staff = uuid.uuid4()
    order: list[str] = []
    first_has_lock = asyncio.Event()

    async def second_is_waiting() -> bool:
        return bool(await tables.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))

    async def first() -> None:
        async with tables.acquire() as conn, conn.transaction():
            await ONCE.lock(conn, staff, "k")
            first_has_lock.set()
            await wait_until(second_is_waiting, timeout=20)  # the second one is blocked
            order.append("first")
            await ONCE.finish(conn, staff, "k", b"h", {"status_code": 201, "sealed_body": b""})

    async def second() -> None:
        await first_has_lock.wait()
        async with tables.acquire() as conn, conn.transaction():
            await ONCE.lock(conn, staff, "k")
            order.append("second")
            seen = await ONCE.get(conn, staff, "k")
            assert seen is not None  # it sees the first one's answer

    await asyncio.gather(first(), second())
    assert order == ["first", "second"]


def test_only_plain_names_reach_the_sql() -> None:
    with pytest.raises(ValueError):
        IdempotencyStore("answers; drop table x", kept=())
    with pytest.raises(ValueError):
        IdempotencyStore("answers", kept=("a b",))
