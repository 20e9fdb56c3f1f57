"""A running slice of the kit for tests: watch, relay and a supervised consumer
over test-only event types, with a table of applied effects and a checker."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import asyncpg
from aiokafka import TopicPartition

from shared.schemas.base import Event
from shared.schemas.envelope import Envelope
from shared.servicekit.broker import BrokerWatch, KafkaConfig, new_consumer
from shared.servicekit.consumer import Handler, InboxConsumer, Supervisor, dlq_topic
from shared.servicekit.outbox import Outbox, OutboxRelay
from shared.servicekit.topics import broker_topic

EFFECTS_DDL = """
CREATE TABLE IF NOT EXISTS effects (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject  text    NOT NULL,
    seq      integer NOT NULL,
    event_id uuid    NOT NULL
)"""


def event_type(topic: str, name: str = "ThingHappened") -> type[Event]:
    """A test event type on its own topic (so tests sharing a broker never meet)."""

    class ThingHappened(Event):
        TYPE: ClassVar[str] = name
        TOPIC: ClassVar[str] = topic
        KEY_FIELD: ClassVar[str] = "thing_id"
        thing_id: str
        seq: int
        poison: bool = False

    return ThingHappened


async def record_effect(
    conn: asyncpg.Connection, deps: Any, event: Any, envelope: Envelope
) -> None:
    if event.poison:
        raise RuntimeError("this event can never be applied")
    await conn.execute(
        "INSERT INTO effects (subject, seq, event_id) VALUES ($1, $2, $3)",
        event.thing_id, event.seq, envelope.event_id,
    )


@dataclass
class Check:
    lost: int
    duplicated: int
    reordered: int
    applied: int


async def check_effects(pool: asyncpg.Pool, expected: dict[str, int]) -> Check:
    """``expected``: subject -> number of events written (seq 0..n-1)."""
    rows = await pool.fetch("SELECT subject, seq FROM effects ORDER BY id")
    seen: dict[str, list[int]] = {}
    for r in rows:
        seen.setdefault(r["subject"], []).append(r["seq"])
    lost = dup = reordered = 0
    for subject, n in expected.items():
        got = seen.get(subject, [])
        lost += len(set(range(n)) - set(got))
        dup += len(got) - len(set(got))
        reordered += sum(1 for a, b in itertools.pairwise(got) if b <= a)
    return Check(lost, dup, reordered, len(rows))


@dataclass
class KitNode:
    """One service process worth of kit, on one database."""

    dsn: str
    pool: asyncpg.Pool
    bootstrap: str
    topic: str
    name: str = "kit-test"
    handler: Handler = record_effect
    start_consumer: bool = True
    check_interval: float = 0.3
    mode: str = "assign"
    unassigned_grace: float = 30.0
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.Thing = event_type(self.topic)
        self.registry = {self.Thing.TYPE: self.Thing}
        self.cfg = KafkaConfig(
            bootstrap=self.bootstrap, partitions=4, client_id=self.name,
            fetch_max_wait_ms=50, request_timeout_ms=5000,
        )
        self.watch = BrokerWatch(
            self.cfg, topics=[self.topic, dlq_topic(self.topic)], interval=self.check_interval
        )
        self.relay = OutboxRelay(
            self.dsn, self.pool, self.cfg, self.watch, poll_interval=0.2, lease_seconds=10
        )
        self.outbox = Outbox(producer=self.name)
        self.supervisor = Supervisor(
            self.new_consumer, self.watch, unassigned_grace=self.unassigned_grace
        )

    def new_consumer(self) -> InboxConsumer:
        return InboxConsumer(
            self.name, self.pool, self.cfg, self.watch, {self.Thing: self.handler},
            mode=self.mode, max_attempts=3, retry_base_seconds=0.05,
        )

    async def start(self, *, relay: bool = True) -> None:
        await self.pool.execute(EFFECTS_DDL)
        await self.watch.check()
        self.tasks.append(asyncio.create_task(self.watch.run()))
        if relay:
            self.tasks.append(asyncio.create_task(self.relay.run()))
        if self.start_consumer:
            self.tasks.append(asyncio.create_task(self.supervisor.run()))

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        await self.watch.close()

    async def write(self, subject: str, seq: int, *, poison: bool = False) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self.outbox.add(conn, self.Thing(thing_id=subject, seq=seq, poison=poison))

    async def write_many(self, subjects: int, per_subject: int, start_seq: int = 0) -> None:
        """Interleaved: seq k of every subject, then seq k+1..."""
        async with self.pool.acquire() as conn, conn.transaction():
            for k in range(start_seq, start_seq + per_subject):
                for s in range(subjects):
                    await self.outbox.add(conn, self.Thing(thing_id=f"s{s}", seq=k))


def unique_topic() -> str:
    return f"kit-test.{uuid.uuid4().hex[:10]}.v1"


# Deadlines are how long a test waits before it calls a missing effect a failure, never
# a speed claim (benchmarks measure speed). On a shared, loaded machine events take
# longer to arrive; CSC_TEST_PATIENCE stretches every deadline (default 3).
PATIENCE = float(os.environ.get("CSC_TEST_PATIENCE", "3"))


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0, interval: float = 0.05
) -> None:
    timeout *= PATIENCE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


UNSENT = (
    "SELECT count(*) FROM outbox o, outbox_cursor c"
    " WHERE c.name = 'relay' AND (o.xid, o.id) > (c.xid, c.id)"
)


async def wait_drained(node: KitNode, timeout: float = 60.0) -> None:
    """Wait until everything written has been sent and the node's consumer has read
    its topic to the end: the relay's cursor is past every outbox row, and the
    consumer's stored offsets (at the broker's current epoch) reach the topic's end
    offset on every partition. After this a duplicate cannot still be on its way,
    so a no-duplicate check is final (no "settle" sleep)."""
    topic = broker_topic(node.topic)
    reader = new_consumer(node.cfg, group_id=None)
    await reader.start()
    try:
        async def drained() -> bool:
            if int(await node.pool.fetchval(UNSENT)) or node.watch.epoch is None:
                return False
            await reader.topics()  # refreshes metadata
            parts = reader.partitions_for_topic(topic)
            if not parts:
                return False
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            ends = await reader.end_offsets(tps)
            rows = await node.pool.fetch(
                "SELECT partition, next_offset FROM consumer_offsets"
                " WHERE consumer = $1 AND topic = $2 AND broker_epoch = $3",
                node.name, topic, node.watch.epoch,
            )
            stored = {r["partition"]: r["next_offset"] for r in rows}
            return all(stored.get(tp.partition, 0) >= end for tp, end in ends.items())

        await wait_until(drained, timeout=timeout, interval=0.1)
    finally:
        await reader.stop()
