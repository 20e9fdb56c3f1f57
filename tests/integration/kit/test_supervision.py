"""The supervisor keeps consumers alive; group mode; dead letters replayed by operators."""

from __future__ import annotations

import asyncpg
import pytest

from shared.servicekit.dlq import ReplayError, list_dead_letters, replay
from tests.support.kit import KitNode, record_effect, unique_topic, wait_drained, wait_until
from tests.support.stack import Servers


async def _count(pool: asyncpg.Pool, sql: str) -> int:
    return int(await pool.fetchval(sql))


def _effects(pool: asyncpg.Pool, n: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return await _count(pool, "SELECT count(*) FROM effects") >= n

    return check


async def test_a_consumer_that_dies_is_recreated_and_nothing_is_applied_twice(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    crashes = 0

    async def flaky(conn: asyncpg.Connection, deps, event, envelope) -> None:  # type: ignore[no-untyped-def]
        nonlocal crashes
        # one subject's event, so both crashes hit the same partition worker in
        # turn (a crash in each of two partitions at once is one restart)
        if event.thing_id == "s0" and event.seq == 5 and crashes < 2:
            crashes += 1
            raise ConnectionResetError("database went away")  # kills the consumer task
        await record_effect(conn, deps, event, envelope)

    node = KitNode(database, pool, servers.bootstrap, unique_topic())
    node.handler = flaky
    await node.start()
    try:
        await node.write_many(subjects=3, per_subject=10)
        await wait_until(_effects(pool, 30))
        await wait_drained(node)
        assert node.supervisor.restarts >= 2
        assert await _count(pool, "SELECT count(*) FROM effects") == 30
        assert await _count(pool, "SELECT count(DISTINCT event_id) FROM effects") == 30
    finally:
        await node.stop()


async def test_group_mode_consumer_joins_and_applies(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    node = KitNode(database, pool, servers.bootstrap, unique_topic(), mode="group")
    await node.start()
    try:
        await node.write_many(subjects=8, per_subject=5)
        await wait_until(_effects(pool, 40), timeout=60)

        # A group may rebalance at any time (a slow heartbeat on a loaded
        # machine); what must hold is that this lone member ends up with all four.
        async def holds_every_partition() -> bool:
            current = node.supervisor.current
            return current is not None and len(current.assigned) == 4

        await wait_until(holds_every_partition, timeout=30)
        assert await _count(pool, "SELECT count(DISTINCT event_id) FROM effects") == 40
    finally:
        await node.stop()


async def test_a_consumer_left_without_partitions_is_recreated(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    # In group mode a consumer whose group never assigns it anything is
    # recreated after the grace period.
    node = KitNode(
        database, pool, servers.bootstrap, unique_topic(), mode="group", unassigned_grace=0.5
    )
    node.new_consumer_orig = node.new_consumer  # type: ignore[attr-defined]

    def never_assigned():  # type: ignore[no-untyped-def]
        c = node.new_consumer_orig()  # type: ignore[attr-defined]
        c.topics = []  # subscribes to nothing: the group gives it no partition
        return c

    node.supervisor.make = never_assigned
    await node.start()
    try:
        await wait_until(lambda: _restarted(node), timeout=30)
        assert node.supervisor.restarts >= 1  # recreated, not left idle
    finally:
        await node.stop()


async def _restarted(node: KitNode) -> bool:
    return node.supervisor.restarts >= 1


async def test_dead_letter_listed_and_replayed_once_fixed(
    servers: Servers, database: str, pool: asyncpg.Pool
) -> None:
    node = KitNode(database, pool, servers.bootstrap, unique_topic())
    await node.start()
    try:
        await node.write("d", 0, poison=True)
        await node.write("d", 1)
        await wait_until(_effects(pool, 1))
        async with pool.acquire() as conn:
            letters = await list_dead_letters(conn)
            assert len(letters) == 1 and letters[0].event_type == node.Thing.TYPE
            # still failing: the operator is told, nothing changes
            with pytest.raises(ReplayError, match="failed again"):
                await replay(conn, letters[0].id, {node.Thing: record_effect})
            assert await _count(pool, "SELECT count(*) FROM effects") == 1

            async def fixed(c: asyncpg.Connection, deps, event, envelope) -> None:  # type: ignore[no-untyped-def]
                await c.execute(
                    "INSERT INTO effects (subject, seq, event_id) VALUES ($1, $2, $3)",
                    event.thing_id, event.seq, envelope.event_id,
                )

            assert await replay(conn, letters[0].id, {node.Thing: fixed}) == (
                node.Thing.TYPE
            )
            with pytest.raises(ReplayError, match="already replayed"):
                await replay(conn, letters[0].id, {node.Thing: fixed})
            with pytest.raises(ReplayError, match="no dead letter"):
                await replay(conn, 999_999, {node.Thing: fixed})
            assert await list_dead_letters(conn) == []
            assert len(await list_dead_letters(conn, include_replayed=True)) == 1
        assert sorted(r["seq"] for r in await pool.fetch("SELECT seq FROM effects")) == [0, 1]
    finally:
        await node.stop()
