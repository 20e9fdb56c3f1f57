"""Relay details: leases of a crashed relay, NOTIFY wake-up, pruning."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from shared.servicekit.outbox import OutboxRelay
from tests.support.kit import KitNode, unique_topic, wait_until
from tests.support.stack import Servers


async def _unpublished(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))


async def test_rows_of_a_relay_that_died_holding_them_are_sent_after_its_lease(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    node = KitNode(database, pool, servers.bootstrap, unique_topic(), start_consumer=False)
    await node.start(relay=False)
    try:
        await node.write_many(subjects=3, per_subject=4)
        crashed = OutboxRelay(database, pool, node.cfg, node.watch, lease_seconds=1.0)
        claimed = await crashed.claim()  # ... and dies before sending
        assert len(claimed) == 12
        other = OutboxRelay(database, pool, node.cfg, node.watch)
        assert await other.publish_once() == 0  # leased: not taken, not sent twice
        await asyncio.sleep(1.2)
        assert await other.publish_once() == 12
        assert await _unpublished(pool) == 0
        await other._drop_producer()
    finally:
        await node.stop()


async def test_relay_wakes_on_notify_long_before_its_polling_interval(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    node = KitNode(database, pool, servers.bootstrap, unique_topic(), start_consumer=False)
    await node.start(relay=False)
    relay = OutboxRelay(database, pool, node.cfg, node.watch, poll_interval=30.0)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.5)  # listening, and idle
        start = time.monotonic()
        await node.write("n", 0)

        async def sent() -> bool:
            return await _unpublished(pool) == 0

        await wait_until(sent, timeout=10)
        assert time.monotonic() - start < 2.0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await node.stop()


async def test_prune_removes_only_published_rows_past_retention(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    node = KitNode(database, pool, servers.bootstrap, unique_topic(), start_consumer=False)
    for seq in range(3):
        await node.write("p", seq)
    await pool.execute(
        "UPDATE outbox SET published_at = now() - interval '10 days' WHERE id ="
        " (SELECT min(id) FROM outbox)"
    )
    await pool.execute(
        "UPDATE outbox SET published_at = now() - interval '1 hour' WHERE id ="
        " (SELECT min(id) + 1 FROM outbox)"
    )
    relay = OutboxRelay(database, pool, node.cfg, node.watch, retention_hours=24 * 7)
    assert await relay.prune() == 1
    left = [r["seq"] for r in await pool.fetch(
        "SELECT (convert_from(value, 'UTF8')::jsonb -> 'payload' ->> 'seq')::int AS seq"
        " FROM outbox ORDER BY id")]
    assert left == [1, 2]


async def test_a_lease_is_written_beside_its_row_not_into_every_index(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    """The outbox leaves room on its pages, so the relay's lease is a HOT update:
    no new entry in each of the outbox's indexes for every row it claims."""
    node = KitNode(database, pool, servers.bootstrap, unique_topic(), start_consumer=False)
    await node.write_many(subjects=10, per_subject=20)
    relay = OutboxRelay(database, pool, node.cfg, node.watch)
    assert len(await relay.claim()) == 200

    async def counted() -> bool:
        row = await pool.fetchrow(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'outbox'")
        return row is not None and row["n_tup_upd"] >= 200

    await wait_until(counted, timeout=10)  # a backend reports its counts when idle
    hot = await pool.fetchval(
        "SELECT n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'outbox'")
    assert hot >= 190  # all but a page's worth that found no room
