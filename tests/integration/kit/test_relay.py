"""Relay details: one relay sends while others stand by, late commits, NOTIFY
wake-up, no update per row, pruning, migrating an outbox the old relay filled."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import TopicPartition

from shared.servicekit.broker import new_consumer
from shared.servicekit.db import KIT_MIGRATIONS, migrate
from shared.servicekit.outbox import RELAY_LOCK_KEY, OutboxRelay
from shared.servicekit.topics import broker_topic
from tests.support.kit import KitNode, check_effects, unique_topic, wait_drained, wait_until
from tests.support.stack import Servers

UNSENT = (
    "SELECT count(*) FROM outbox o, outbox_cursor c"
    " WHERE c.name = 'relay' AND (o.xid, o.id) > (c.xid, c.id)"
)


async def _unpublished(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval(UNSENT))


async def _topic_seqs(node: KitNode, count: int) -> list[tuple[str, int]]:
    """(subject, seq) of the first ``count`` records on the node's topic, per partition order."""
    consumer = new_consumer(node.cfg, group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(broker_topic(node.topic), p) for p in range(node.cfg.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        got: list[tuple[str, int]] = []
        deadline = time.monotonic() + 20
        while len(got) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    from shared.schemas.envelope import Envelope

                    env = Envelope.from_bytes(r.value or b"")
                    got.append((env.payload["thing_id"], env.payload["seq"]))
        return got
    finally:
        await consumer.stop()


async def test_a_relay_stands_by_while_another_is_sending_and_takes_over_when_it_dies(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    node = KitNode(database, pool, servers.bootstrap, unique_topic(), start_consumer=False)
    await node.start(relay=False)
    try:
        await node.write_many(subjects=3, per_subject=4)
        # the active relay, stuck in the middle of a round, holding the round's lock
        active = await asyncpg.connect(database)
        tx = active.transaction()
        await tx.start()
        assert await active.fetchval("SELECT pg_try_advisory_xact_lock($1)", RELAY_LOCK_KEY)
        other = OutboxRelay(database, pool, node.cfg, node.watch)
        assert await other.publish_once() == 0  # standing by: nothing sent twice at once
        assert not other.active
        assert await _unpublished(pool) == 12
        await active.close()  # the active relay dies: its lock goes with its session
        assert await other.publish_once() == 12
        assert other.active
        assert await _unpublished(pool) == 0
        await other._drop_producer()
    finally:
        await node.stop()


async def test_two_running_relays_send_every_row_once_in_order(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    node = KitNode(database, pool, servers.bootstrap, unique_topic())
    second = OutboxRelay(database, pool, node.cfg, node.watch, poll_interval=0.2)
    await node.start()
    task = asyncio.create_task(second.run())
    try:
        for k in range(5):
            await node.write_many(subjects=20, per_subject=10, start_seq=k * 10)

        async def done() -> bool:
            return int(await pool.fetchval("SELECT count(*) FROM effects")) >= 1000

        await wait_until(done, timeout=60)
        await wait_drained(node)
        result = await check_effects(pool, {f"s{i}": 50 for i in range(20)})
        assert (result.lost, result.duplicated, result.reordered) == (0, 0, 0)
        assert node.relay.published + second.published == 1000
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await node.stop()


async def test_a_transaction_that_commits_late_is_still_sent_in_order_for_its_subject(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    """The late transaction takes its outbox id first and commits after rows with
    later ids were sent: its row is not skipped, and its subject keeps its order."""
    node = KitNode(database, pool, servers.bootstrap, unique_topic(), start_consumer=False)
    await node.start(relay=False)
    relay = OutboxRelay(database, pool, node.cfg, node.watch)
    early = await asyncpg.connect(database)
    late = await asyncpg.connect(database)
    try:
        await early.execute("BEGIN")
        await early.fetchval("SELECT pg_current_xact_id()")  # an older transaction id
        await late.execute("BEGIN")
        await node.outbox.add(late, node.Thing(thing_id="late", seq=0))  # the lower id
        await node.outbox.add(early, node.Thing(thing_id="early", seq=0))  # a later id
        lower = await late.fetchval("SELECT id FROM outbox WHERE subject = 'late'")
        assert await early.fetchval("SELECT id FROM outbox WHERE subject = 'early'") > lower
        await early.execute("COMMIT")
        assert await relay.publish_once() == 1  # the later id is sent; the open one waits
        await late.execute("COMMIT")
        await node.write("late", 1)
        assert await relay.publish_once() == 2
        assert await _unpublished(pool) == 0
        got = await _topic_seqs(node, 3)
        assert sorted(got) == [("early", 0), ("late", 0), ("late", 1)]
        assert [s for s in got if s[0] == "late"] == [("late", 0), ("late", 1)]
        await relay._drop_producer()
    finally:
        await early.close()
        await late.close()
        await node.stop()


async def test_a_subjects_event_written_after_another_commit_is_never_sent_before_it(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    """Transaction order is not commit order: B takes its xid first, A writes the
    subject's first event and commits, then B writes its second. While a
    transaction between them stays open, only B's row is below the horizon;
    the relay holds it back instead of sending the subject's events reversed."""
    node = KitNode(database, pool, servers.bootstrap, unique_topic(), start_consumer=False)
    await node.start(relay=False)
    relay = OutboxRelay(database, pool, node.cfg, node.watch)
    b, between, a = [await asyncpg.connect(database) for _ in range(3)]
    try:
        await b.execute("BEGIN")
        await b.fetchval("SELECT pg_current_xact_id()")
        await between.execute("BEGIN")
        await between.fetchval("SELECT pg_current_xact_id()")
        async with a.transaction():
            await node.outbox.add(a, node.Thing(thing_id="x", seq=0))
        await node.outbox.add(b, node.Thing(thing_id="x", seq=1))
        await b.execute("COMMIT")
        assert await relay.publish_once() == 0  # seq 1 waits for seq 0
        await between.execute("COMMIT")
        assert await relay.publish_once() == 2
        assert await _topic_seqs(node, 2) == [("x", 0), ("x", 1)]
        await relay._drop_producer()
    finally:
        for c in (b, between, a):
            await c.close()
        await node.stop()


class CountingRelay(OutboxRelay):
    """A relay that counts its rounds (each call of publish_once)."""

    rounds = 0

    async def publish_once(self, *args: Any, **kwargs: Any) -> int:
        self.rounds += 1
        return await super().publish_once(*args, **kwargs)


async def test_relay_wakes_on_notify_not_on_its_polling_interval(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    """A relay polling once an hour sends a new row at once: NOTIFY woke it."""
    node = KitNode(database, pool, servers.bootstrap, unique_topic(), start_consumer=False)
    await node.start(relay=False)
    relay = CountingRelay(database, pool, node.cfg, node.watch, poll_interval=3600.0)
    task = asyncio.create_task(relay.run())
    try:
        async def listening_and_idle() -> bool:
            # LISTEN is in place, and the round its start-up wake asked for has run
            # (rounds >= 2): from now on only a NOTIFY (or an hour) wakes the relay
            listens = await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query ILIKE 'LISTEN%outbox%'")
            return bool(listens) and relay.rounds >= 2 and not relay._wake.is_set()

        await wait_until(listening_and_idle, timeout=20)
        rounds = relay.rounds
        await node.write("n", 0)

        async def sent() -> bool:
            return await _unpublished(pool) == 0

        await wait_until(sent, timeout=60)
        assert relay.rounds > rounds and relay.published == 1

        async def marked() -> bool:  # and, once idle, published_at is filled in
            return not await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")

        await wait_until(marked, timeout=10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await node.stop()


async def test_sending_writes_no_outbox_row(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    """The relay moves one cursor row per batch: every outbox row stays as written
    (same tuple, same creating transaction), so sending costs no update per event."""
    node = KitNode(database, pool, servers.bootstrap, unique_topic(), start_consumer=False)
    await node.watch.check()
    await node.write_many(subjects=10, per_subject=20)
    before = await pool.fetch("SELECT id, ctid::text, xmin::text FROM outbox ORDER BY id")
    relay = OutboxRelay(database, pool, node.cfg, node.watch, batch_size=1000)
    assert await relay.publish_once(mark=False) == 200
    assert await relay.publish_once(mark=False) == 0
    after = await pool.fetch("SELECT id, ctid::text, xmin::text FROM outbox ORDER BY id")
    assert [tuple(r) for r in after] == [tuple(r) for r in before]
    assert await _unpublished(pool) == 0
    await relay._drop_producer()
    await node.watch.close()


async def test_prune_removes_only_published_rows_past_retention(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    node = KitNode(database, pool, servers.bootstrap, unique_topic(), start_consumer=False)
    await node.watch.check()
    for seq in range(3):
        await node.write("p", seq)
    relay = OutboxRelay(database, pool, node.cfg, node.watch, retention_hours=24 * 7)
    assert await relay.publish_once() == 3
    await node.write("p", 3)  # not sent yet: never pruned, however old
    await pool.execute(
        "UPDATE outbox SET published_at = now() - interval '10 days' WHERE id ="
        " (SELECT min(id) FROM outbox)"
    )
    await pool.execute(
        "UPDATE outbox SET published_at = now() - interval '1 hour' WHERE id ="
        " (SELECT min(id) + 1 FROM outbox)"
    )
    await pool.execute(
        "UPDATE outbox SET created_at = now() - interval '10 days' WHERE id ="
        " (SELECT max(id) FROM outbox)"
    )
    assert await relay.prune() == 1
    left = [r["seq"] for r in await pool.fetch(
        "SELECT (convert_from(value, 'UTF8')::jsonb -> 'payload' ->> 'seq')::int AS seq"
        " FROM outbox ORDER BY id")]
    assert left == [1, 2, 3]
    await relay._drop_producer()
    await node.watch.close()


async def test_an_outbox_filled_by_the_old_relay_is_taken_over_without_loss(
    servers: Servers, tmp_path: Path
) -> None:
    """Rows published by the lease-and-mark relay are not sent again; its unsent
    rows (and everything written after the migration) are, in order."""
    admin = await asyncpg.connect(servers.pg_dsn("postgres"))
    name = f"kit_migr_{int(time.time() * 1000) % 10**9}"
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    dsn = servers.pg_dsn(name)
    old = tmp_path / "old"
    old.mkdir()
    for f in sorted(KIT_MIGRATIONS.glob("*.sql")):
        if f.name < "0017":
            (old / f.name).write_text(f.read_text())
    conn = await asyncpg.connect(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    assert pool is not None
    node = KitNode(dsn, pool, servers.bootstrap, unique_topic())
    try:
        await migrate(conn, [("kit", old)])
        epoch = await node.watch.check()
        await node.write_many(subjects=4, per_subject=3)  # the old relay sent seq 0 and 1
        await conn.execute(
            "UPDATE outbox SET published_at = now(), broker_epoch = $1 WHERE"
            " (convert_from(value, 'UTF8')::jsonb -> 'payload' ->> 'seq')::int < 2", epoch)
        await migrate(conn, [("kit", KIT_MIGRATIONS)])
        await node.write_many(subjects=4, per_subject=1, start_seq=3)
        relay = OutboxRelay(dsn, pool, node.cfg, node.watch)
        assert await relay.publish_once() == 8  # seq 2 of the old rows, seq 3 new
        got = await _topic_seqs(node, 8)
        assert sorted(got) == sorted((f"s{i}", k) for i in range(4) for k in (2, 3))
        await relay._drop_producer()
    finally:
        await node.watch.close()
        await pool.close()
        await conn.close()
