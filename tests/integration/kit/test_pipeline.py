"""Outbox -> broker -> inbox against the real PostgreSQL and broker."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from shared.schemas.envelope import Envelope
from shared.servicekit.outbox import OutboxRelay
from shared.servicekit.topics import broker_topic
from tests.support.kit import KitNode, check_effects, unique_topic, wait_drained, wait_until
from tests.support.stack import Servers


async def _count(pool: asyncpg.Pool, sql: str) -> int:
    return int(await pool.fetchval(sql))


async def test_rolled_back_write_leaves_no_event_committed_one_leaves_one(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    node = KitNode(database, pool, servers.bootstrap, unique_topic())
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await node.outbox.add(conn, node.Thing(thing_id="a", seq=0))
            raise RuntimeError("business rule failed")
    assert await _count(pool, "SELECT count(*) FROM outbox") == 0
    await node.write("a", 0)
    assert await _count(pool, "SELECT count(*) FROM outbox") == 1
    await node.start()
    try:
        await wait_until(lambda: _has(pool, "SELECT count(*) FROM effects", 1))
        await wait_drained(node)
        assert await _count(pool, "SELECT count(*) FROM effects") == 1
        # and, once the relay is idle, the row is marked published
        unmarked = "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        await wait_until(lambda: _none(pool, unmarked))
    finally:
        await node.stop()


async def test_add_outside_a_transaction_is_refused(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    node = KitNode(database, pool, servers.bootstrap, unique_topic())
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="transaction"):
            await node.outbox.add(conn, node.Thing(thing_id="a", seq=0))


async def _none(pool: asyncpg.Pool, sql: str) -> bool:
    return await _count(pool, sql) == 0


async def _has(pool: asyncpg.Pool, sql: str, n: int) -> bool:
    return await _count(pool, sql) >= n


@pytest.mark.slow  # 10,000 events
async def test_ten_thousand_events_none_lost_duplicated_or_reordered(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    node = KitNode(database, pool, servers.bootstrap, unique_topic())
    await node.start()
    try:
        await node.write_many(subjects=100, per_subject=50)
        await node.write_many(subjects=100, per_subject=50, start_seq=50)
        await wait_until(lambda: _has(pool, "SELECT count(*) FROM effects", 10_000), timeout=60)
        await wait_drained(node)
        result = await check_effects(pool, {f"s{i}": 100 for i in range(100)})
        assert (result.lost, result.duplicated, result.reordered) == (0, 0, 0)
        assert result.applied == 10_000
    finally:
        await node.stop()


async def test_same_event_delivered_twice_changes_state_once(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    node = KitNode(database, pool, servers.bootstrap, unique_topic())
    await node.start(relay=False)
    try:
        event = node.Thing(thing_id="x", seq=0)
        env = Envelope.wrap(event, producer="test")
        from shared.servicekit.outbox import add_envelope

        for _ in range(2):  # the same envelope, same event id, published twice
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("DELETE FROM outbox")
                await add_envelope(conn, env, topic=node.topic)
            relay = OutboxRelay(database, pool, node.cfg, node.watch)
            assert await relay.publish_once() == 1
            await relay._drop_producer()
        await wait_until(lambda: _has(pool, "SELECT count(*) FROM inbox", 1))
        offsets = await wait_for_offset(pool, 2)
        assert offsets == 2
        assert await _count(pool, "SELECT count(*) FROM effects") == 1
    finally:
        await node.stop()


async def wait_for_offset(pool: asyncpg.Pool, total: int) -> int:
    async def done() -> bool:
        sql = "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets"
        return await _count(pool, sql) >= total

    await wait_until(done)
    return await _count(pool, "SELECT coalesce(sum(next_offset),0) FROM consumer_offsets")


async def test_poison_message_goes_to_dead_letters_and_the_rest_are_applied(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    node = KitNode(database, pool, servers.bootstrap, unique_topic())
    await node.start()
    try:
        await node.write("p", 0)
        await node.write("p", 1, poison=True)
        await node.write("p", 2)
        await wait_until(lambda: _has(pool, "SELECT count(*) FROM effects", 2))
        dead = await pool.fetch("SELECT * FROM dead_letter")
        assert len(dead) == 1
        assert "can never be applied" in dead[0]["error"]
        assert dead[0]["attempts"] == 3
        assert [r["seq"] for r in await pool.fetch("SELECT seq FROM effects ORDER BY id")] == [0, 2]
        # and on the dead-letter topic, with its reason
        from aiokafka import AIOKafkaConsumer

        c = AIOKafkaConsumer(
            broker_topic(f"{node.topic}.dlq"), bootstrap_servers=servers.bootstrap,
            auto_offset_reset="earliest", enable_auto_commit=False,
        )
        await c.start()
        try:
            msg = await asyncio.wait_for(c.getone(), 10)
        finally:
            await c.stop()
        assert b"can never be applied" in msg.value
    finally:
        await node.stop()


async def test_unreadable_record_is_dead_lettered_at_once(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    node = KitNode(database, pool, servers.bootstrap, unique_topic())
    await node.start()
    try:
        from shared.servicekit.outbox import add_raw

        async with pool.acquire() as conn, conn.transaction():
            await add_raw(conn, event_id=uuid.uuid4(), topic=node.topic, subject="q",
                          event_type="Garbage", value=b"{not json")
        await node.write("q", 0)
        await wait_until(lambda: _has(pool, "SELECT count(*) FROM effects", 1))
        dead = await pool.fetch("SELECT error, attempts FROM dead_letter")
        assert len(dead) == 1 and dead[0]["attempts"] == 1
    finally:
        await node.stop()


async def test_two_relays_publish_each_row_once(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    node = KitNode(database, pool, servers.bootstrap, unique_topic(), start_consumer=False)
    await node.start(relay=False)
    try:
        await node.write_many(subjects=200, per_subject=10)
        relays = [
            OutboxRelay(database, pool, node.cfg, node.watch, batch_size=50) for _ in range(2)
        ]

        async def drain(r: OutboxRelay) -> None:
            # a relay may find nothing it can take while the other holds a
            # subject's older rows: it keeps going until the outbox is empty
            while await _count(pool, "SELECT count(*) FROM outbox WHERE published_at IS NULL"):
                await r.publish_once()
                await asyncio.sleep(0)

        await asyncio.gather(*(drain(r) for r in relays))
        for r in relays:
            await r._drop_producer()
        assert relays[0].published > 0 and relays[1].published > 0
        assert relays[0].published + relays[1].published == 2000
        # every record on the topic, once, in order per subject
        node.start_consumer = True
        await node.start(relay=False)
        await wait_until(lambda: _has(pool, "SELECT count(*) FROM effects", 2000))
        result = await check_effects(pool, {f"s{i}": 10 for i in range(200)})
        assert (result.lost, result.duplicated, result.reordered) == (0, 0, 0)
        raw = await pool.fetchval("SELECT count(*) FROM inbox")
        assert raw == 2000
    finally:
        await node.stop()
