"""The pipeline survives a cut link, a broker that lost its log, and a killed consumer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio

from shared.devstack.processes import LocalBroker, free_port
from shared.servicekit.broker import EPOCH_PREFIX, create_topics, new_admin, new_epoch
from shared.servicekit.consumer import dlq_topic
from tests.support.kit import KitNode, check_effects, unique_topic, wait_drained, wait_until
from tests.support.stack import Servers
from tests.support.tcpproxy import TcpProxy


async def _count(pool: asyncpg.Pool, sql: str) -> int:
    return int(await pool.fetchval(sql))


def _effects_at_least(pool: asyncpg.Pool, n: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return await _count(pool, "SELECT count(*) FROM effects") >= n

    return check


@pytest_asyncio.fixture
async def proxied_broker() -> AsyncIterator[tuple[LocalBroker, TcpProxy]]:
    """A broker of its own that clients reach only through a proxy."""
    proxy_port = free_port()
    broker = LocalBroker(free_port(), advertised_port=proxy_port)
    broker.start()
    proxy = TcpProxy(proxy_port, broker.port)
    await proxy.start()
    yield broker, proxy
    await proxy.stop()
    broker.stop()


async def test_link_cut_for_seconds_then_restored(
    database: str, pool: asyncpg.Pool, proxied_broker: tuple[LocalBroker, TcpProxy]
) -> None:
    _broker, proxy = proxied_broker
    node = KitNode(database, pool, f"127.0.0.1:{proxy.listen_port}", unique_topic())
    await node.start()
    try:
        await node.write_many(subjects=10, per_subject=20)
        await wait_until(_effects_at_least(pool, 200))
        proxy.cut()
        for seq in range(20, 40):  # written while the broker cannot be reached
            await node.write_many(subjects=10, per_subject=1, start_seq=seq)
            await asyncio.sleep(0.15)
        proxy.restore()
        await node.write_many(subjects=10, per_subject=20, start_seq=40)
        await wait_until(_effects_at_least(pool, 600), timeout=90)
        await wait_drained(node)
        result = await check_effects(pool, {f"s{i}": 60 for i in range(10)})
        assert (result.lost, result.duplicated, result.reordered) == (0, 0, 0)
        assert result.applied == 600
        assert node.relay.published >= 600
    finally:
        await node.stop()


async def test_broker_restarted_empty_is_detected_and_nothing_is_lost(
    database: str, pool: asyncpg.Pool
) -> None:
    broker = LocalBroker(free_port())
    broker.start()
    node = KitNode(database, pool, broker.bootstrap, unique_topic())
    try:
        await node.start()
        await node.write_many(subjects=10, per_subject=20)  # before
        await wait_until(_effects_at_least(pool, 200))
        epoch_before = node.watch.epoch
        # Also leave some published-but-unconsumed events: stop the consumer first.
        node.supervisor.restart()
        broker.stop()
        await node.write_many(subjects=10, per_subject=10, start_seq=20)  # during
        await asyncio.to_thread(broker.start)
        await node.write_many(subjects=10, per_subject=10, start_seq=30)  # after
        await wait_until(_effects_at_least(pool, 400), timeout=90)
        await wait_drained(node)
        assert node.watch.epoch != epoch_before
        result = await check_effects(pool, {f"s{i}": 40 for i in range(10)})
        assert (result.lost, result.duplicated, result.reordered) == (0, 0, 0)
        assert result.applied == 400
    finally:
        await node.stop()
        broker.stop()


async def test_broker_restart_loses_published_but_unconsumed_events_and_they_are_sent_again(
    database: str, pool: asyncpg.Pool
) -> None:
    broker = LocalBroker(free_port())
    broker.start()
    node = KitNode(database, pool, broker.bootstrap, unique_topic(), start_consumer=False)
    try:
        await node.start()
        await node.write_many(subjects=5, per_subject=10)
        await wait_until(
            lambda: _zero(pool, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
        )
        # Published, never consumed; then the broker forgets everything.
        await asyncio.to_thread(broker.restart)
        node.start_consumer = True
        node.tasks.append(asyncio.create_task(node.supervisor.run()))
        await wait_until(_effects_at_least(pool, 50), timeout=60)
        await wait_drained(node)
        result = await check_effects(pool, {f"s{i}": 10 for i in range(5)})
        assert (result.lost, result.duplicated, result.reordered) == (0, 0, 0)
    finally:
        await node.stop()
        broker.stop()


async def _zero(pool: asyncpg.Pool, sql: str) -> bool:
    return await _count(pool, sql) == 0


async def test_consumer_killed_mid_stream_resumes_from_its_stored_offset(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    applied_in_first_life = 0

    async def slow_effect(conn: asyncpg.Connection, deps, event, envelope) -> None:  # type: ignore[no-untyped-def]
        nonlocal applied_in_first_life
        await conn.execute(
            "INSERT INTO effects (subject, seq, event_id) VALUES ($1, $2, $3)",
            event.thing_id, event.seq, envelope.event_id,
        )
        applied_in_first_life += 1

    node = KitNode(database, pool, servers.bootstrap, unique_topic(), start_consumer=False)
    node.handler = slow_effect
    await node.start()
    try:
        await node.write_many(subjects=4, per_subject=500)
        await wait_until(
            lambda: _zero(pool, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
        )
        # small batches so the kill lands between transactions, mid produced batch
        consumer = node.new_consumer()
        consumer.batch_records = 7
        task = asyncio.create_task(consumer.run())
        await wait_until(_effects_at_least(pool, 300))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        stored = await _count(pool, "SELECT sum(next_offset) FROM consumer_offsets")
        applied = await _count(pool, "SELECT count(*) FROM effects")
        assert stored == applied  # offsets and effects committed together
        assert 0 < applied < 2000
        # a new consumer starts from the stored offsets, not from the beginning
        again = node.new_consumer()
        task = asyncio.create_task(again.run())
        await wait_until(_effects_at_least(pool, 2000))
        await wait_drained(node)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        result = await check_effects(pool, {f"s{i}": 500 for i in range(4)})
        assert (result.lost, result.duplicated, result.reordered) == (0, 0, 0)
        assert again.applied == 2000 - applied
        # nothing was even offered to the inbox twice
        assert await _count(pool, "SELECT count(*) FROM inbox") == 2000
    finally:
        await node.stop()


async def test_a_marker_that_lost_the_race_to_be_the_epoch_holds_up_neither_relay_nor_consumer(
    database: str, pool: asyncpg.Pool
) -> None:
    """Two processes found the broker's log empty at once and each made an epoch marker;
    the earliest is the epoch. A relay that had already sent rows stamped with the later
    one (its cursor says so) sends them again into the real epoch, and a consumer skips
    the records stamped with the dead one instead of waiting for it forever."""
    broker = LocalBroker(free_port())
    broker.start()
    node = KitNode(database, pool, broker.bootstrap, unique_topic())
    try:
        admin = new_admin(node.cfg)
        await admin.start()
        try:
            await create_topics(admin, [node.topic, dlq_topic(node.topic)], partitions=4,
                                replication=1)
            winner, loser = new_epoch(), new_epoch()
            assert winner < loser
            await create_topics(admin, [EPOCH_PREFIX + winner, EPOCH_PREFIX + loser],
                                partitions=1, replication=1)
        finally:
            await admin.close()
        await node.write_many(subjects=5, per_subject=4)
        node.watch.epoch = loser  # the view of the process that made the later marker
        assert await node.relay.publish_once() == 20  # sent, stamped with the loser
        assert await pool.fetchval(
            "SELECT broker_epoch FROM outbox_cursor WHERE name = 'relay'") == loser
        await node.start()  # its watch now finds the earliest marker: the winner
        await node.write_many(subjects=5, per_subject=4, start_seq=4)
        await wait_until(_effects_at_least(pool, 40), timeout=60)
        assert node.watch.epoch == winner and loser in node.watch.dead_epochs
        await node.write_many(subjects=5, per_subject=2, start_seq=8)
        await wait_until(_effects_at_least(pool, 50), timeout=60)
        result = await check_effects(pool, {f"s{i}": 10 for i in range(5)})
        assert (result.lost, result.duplicated, result.reordered) == (0, 0, 0)
        assert result.applied == 50
    finally:
        await node.stop()
        broker.stop()
