"""The consumer's batches: batch handlers, a failing event isolated in a batch,
order across handlers, and a database that is transiently unable (SQLSTATE
classes 08/40/53/57) retried without dead-lettering."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from shared.schemas.envelope import Envelope
from shared.servicekit.consumer import BatchHandler, InboxConsumer, batch_handler, is_transient
from tests.support.kit import (
    KitNode,
    check_effects,
    event_type,
    unique_topic,
    wait_drained,
    wait_until,
)
from tests.support.stack import Servers


async def _count(pool: asyncpg.Pool, sql: str) -> int:
    return int(await pool.fetchval(sql))


def _effects_at_least(pool: asyncpg.Pool, n: int) -> Any:
    async def check() -> bool:
        return await _count(pool, "SELECT count(*) FROM effects") >= n

    return check


async def _insert_effects(conn: asyncpg.Connection, items: list[tuple[Any, Envelope]]) -> None:
    await conn.executemany(
        "INSERT INTO effects (subject, seq, event_id) VALUES ($1, $2, $3)",
        [(e.thing_id, e.seq, env.event_id) for e, env in items],
    )


async def _run_consumer(node: KitNode, consumer: InboxConsumer, n: int) -> None:
    task = asyncio.create_task(consumer.run())
    try:
        await wait_until(_effects_at_least(node.pool, n), timeout=60)
        await wait_drained(node)  # read to the end: no late duplicate
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_batch_handler_gets_many_events_per_call_each_applied_once_in_order(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    sizes: list[int] = []

    @batch_handler
    async def on_things(conn: Any, deps: Any, items: list[tuple[Any, Envelope]]) -> None:
        sizes.append(len(items))
        await _insert_effects(conn, items)

    node = KitNode(database, pool, servers.bootstrap, unique_topic(), start_consumer=False)
    await node.start()
    try:
        await node.write_many(subjects=10, per_subject=100)
        await wait_until(lambda: _count_zero_unsent(pool), timeout=30)
        consumer = InboxConsumer(node.name, pool, node.cfg, node.watch, {node.Thing: on_things})
        await _run_consumer(node, consumer, 1000)
        result = await check_effects(pool, {f"s{i}": 100 for i in range(10)})
        assert (result.lost, result.duplicated, result.reordered) == (0, 0, 0)
        assert result.applied == 1000
        assert max(sizes) > 1 and sum(sizes) == 1000
        assert consumer.applied == 1000
        # redelivered from the start: the inbox keeps every event applied once
        again = InboxConsumer(node.name, pool, node.cfg, node.watch, {node.Thing: on_things})
        await pool.execute("DELETE FROM consumer_offsets")
        task = asyncio.create_task(again.run())

        async def offsets_back() -> bool:
            return await _count(pool, "SELECT coalesce(sum(next_offset), 0)"
                                " FROM consumer_offsets") >= 1000

        await wait_until(offsets_back, timeout=30)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert await _count(pool, "SELECT count(*) FROM effects") == 1000
        assert again.applied == 0
    finally:
        await node.stop()


async def _count_zero_unsent(pool: asyncpg.Pool) -> bool:
    return not await pool.fetchval(
        "SELECT count(*) FROM outbox o, outbox_cursor c"
        " WHERE c.name = 'relay' AND (o.xid, o.id) > (c.xid, c.id)")


async def test_a_failing_event_in_a_batch_is_dead_lettered_alone_its_neighbours_applied(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    calls: list[int] = []

    async def one_by_one(conn: Any, deps: Any, event: Any, envelope: Envelope) -> None:
        calls.append(event.seq)
        await _insert_effects(conn, [(event, envelope)])

    @batch_handler
    async def on_things(conn: Any, deps: Any, items: list[tuple[Any, Envelope]]) -> None:
        if any(e.poison for e, _ in items):
            raise RuntimeError("this event can never be applied")
        await _insert_effects(conn, items)

    node = KitNode(database, pool, servers.bootstrap, unique_topic(), start_consumer=False)
    await node.start()
    try:
        async with pool.acquire() as conn, conn.transaction():
            for seq in range(300):
                await node.outbox.add(
                    conn, node.Thing(thing_id="p", seq=seq, poison=seq == 150))
        await wait_until(lambda: _count_zero_unsent(pool), timeout=30)
        consumer = InboxConsumer(
            node.name, pool, node.cfg, node.watch, {node.Thing: on_things},
            max_attempts=3, retry_base_seconds=0.01,
        )
        await _run_consumer(node, consumer, 299)
        seqs = [r["seq"] for r in await pool.fetch("SELECT seq FROM effects ORDER BY id")]
        assert seqs == [s for s in range(300) if s != 150]
        dead = await pool.fetch("SELECT error, attempts, \"offset\" FROM dead_letter")
        assert len(dead) == 1 and dead[0]["attempts"] == 3
        assert "can never be applied" in dead[0]["error"]
        # the dead letter replays through the per-event form of the batch handler
        fixed = BatchHandler(on_things.batch, one=one_by_one)
        from shared.servicekit.dlq import list_dead_letters, replay

        async with pool.acquire() as conn:
            letter = (await list_dead_letters(conn))[0]
            assert await replay(conn, letter.id, {node.Thing: fixed}) == node.Thing.TYPE
        assert calls == [150]
    finally:
        await node.stop()


async def test_events_of_a_batch_handler_and_a_per_event_handler_keep_their_subjects_order(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    node = KitNode(database, pool, servers.bootstrap, unique_topic(), start_consumer=False)
    Other = event_type(node.topic, "OtherThingHappened")

    @batch_handler
    async def on_things(conn: Any, deps: Any, items: list[tuple[Any, Envelope]]) -> None:
        await _insert_effects(conn, items)

    async def on_other(conn: Any, deps: Any, event: Any, envelope: Envelope) -> None:
        await _insert_effects(conn, [(event, envelope)])

    await node.start()
    try:
        async with pool.acquire() as conn, conn.transaction():
            for seq in range(60):
                for s in range(5):
                    kind = Other if seq % 7 in (3, 4) else node.Thing
                    await node.outbox.add(conn, kind(thing_id=f"s{s}", seq=seq))
        await wait_until(lambda: _count_zero_unsent(pool), timeout=30)
        consumer = InboxConsumer(
            node.name, pool, node.cfg, node.watch, {node.Thing: on_things, Other: on_other})
        await _run_consumer(node, consumer, 300)
        result = await check_effects(pool, {f"s{i}": 60 for i in range(5)})
        assert (result.lost, result.duplicated, result.reordered) == (0, 0, 0)
    finally:
        await node.stop()


async def test_a_database_transiently_unable_is_retried_without_limit_never_dead_lettered(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    """Cancelled statements (57014) and serialization failures (40001) say nothing
    about the event: retried past max_attempts, in place, the partition waiting;
    a handler's own failure (here a data exception, 22012) is dead-lettered."""
    failures = {"57014": 0, "40001": 0}

    async def handler(conn: Any, deps: Any, event: Any, envelope: Envelope) -> None:
        if event.thing_id == "t" and event.seq == 1 and failures["57014"] < 5:
            failures["57014"] += 1
            await conn.execute("SET LOCAL statement_timeout = '1ms'")
            await conn.execute("SELECT pg_sleep(0.2)")
        if event.thing_id == "t" and event.seq == 2 and failures["40001"] < 5:
            failures["40001"] += 1
            await conn.execute(
                "DO $$ BEGIN RAISE EXCEPTION 'could not serialize'"
                " USING ERRCODE = 'serialization_failure'; END $$")
        if event.thing_id == "t" and event.seq == 3:
            await conn.execute("SELECT 1 / 0")  # the handler's own bug
        await _insert_effects(conn, [(event, envelope)])

    node = KitNode(database, pool, servers.bootstrap, unique_topic(), start_consumer=False)
    await node.start()
    try:
        for seq in range(5):
            await node.write("t", seq)
        await wait_until(lambda: _count_zero_unsent(pool), timeout=30)
        consumer = InboxConsumer(
            node.name, pool, node.cfg, node.watch, {node.Thing: handler},
            max_attempts=3, retry_base_seconds=0.01,
        )
        await _run_consumer(node, consumer, 4)
        assert failures == {"57014": 5, "40001": 5}  # beyond max_attempts, still retried
        seqs = [r["seq"] for r in await pool.fetch("SELECT seq FROM effects ORDER BY id")]
        assert seqs == [0, 1, 2, 4]
        dead = await pool.fetch("SELECT error FROM dead_letter")
        assert len(dead) == 1 and "DivisionByZero" in dead[0]["error"]
    finally:
        await node.stop()


def test_sqlstate_classes_08_40_53_57_are_transient_others_are_not() -> None:
    for state, transient in (("08006", True), ("40P01", True), ("53300", True),
                             ("57P01", True), ("57014", True), ("22012", False),
                             ("23505", False), ("42P01", False)):
        exc = asyncpg.PostgresError.new({"C": state, "M": "x", "S": "ERROR"})
        assert is_transient(exc) is transient, state
    assert not is_transient(RuntimeError("handler bug"))
