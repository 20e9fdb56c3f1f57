"""Benchmark: the relay's producer compression, codec by codec, on the local broker.

Sends real envelopes (the bench event of bench/event_pipeline.py, varied subjects and
numbers) the way the relay does: one record batch per partition per round, built with
``create_batch``/``send_batch``. For each codec aiokafka offers here (none and gzip
always; lz4, zstd and snappy when ``cramjam`` is importable), in alternating order,
prints bytes on the wire per record (the built batches' sizes), produce and consume
rates, and CPU µs per event of the producer (compression), the consumer (decompression
and parsing) and the broker.

    .venv/bin/python bench/compression.py [--events 50000] [--batch 125] [--repeat 2]

``--batch`` is records per partition batch: the relay's rounds of 500 rows over 4
partitions give about 125; at a steady 1,000 events/s a round carries a few.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import ClassVar

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka import codec as kafka_codec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.devstack.processes import LocalBroker, free_port
from shared.schemas.base import Event
from shared.schemas.envelope import Envelope
from shared.servicekit.broker import KafkaConfig, create_topics, new_admin, new_consumer

PARTITIONS = 4
_TICK = os.sysconf("SC_CLK_TCK")


class BenchThing(Event):
    TYPE: ClassVar[str] = "BenchThing"
    TOPIC: ClassVar[str] = "bench.things.v1"
    KEY_FIELD: ClassVar[str] = "subject"
    subject: str
    seq: int
    committed_at: float = 0.0


def codecs() -> list[str | None]:
    found: list[str | None] = [None, "gzip"]
    for name, has in (("lz4", kafka_codec.has_lz4), ("zstd", kafka_codec.has_zstd),
                      ("snappy", kafka_codec.has_snappy)):
        if has():
            found.append(name)
    return found


def cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


async def one_run(bootstrap: str, broker_pid: int, codec: str | None, values: list[bytes],
                  keys: list[bytes], batch: int, run: int) -> dict[str, float]:
    topic = f"bench.compression.{codec or 'none'}.{run}"
    cfg = KafkaConfig(bootstrap=bootstrap, partitions=PARTITIONS, client_id="bench",
                      fetch_max_wait_ms=50)
    admin = new_admin(cfg)
    await admin.start()
    try:
        await create_topics(admin, [topic], partitions=PARTITIONS, replication=1)
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=False, linger_ms=2,
                                max_batch_size=256 * 1024, compression_type=codec)
    await producer.start()
    n = len(values)
    wire = 0
    try:
        await producer.send_and_wait(topic, b"warm", key=b"warm", partition=0)
        broker0, cpu0, t0 = cpu_of(broker_pid), time.process_time(), time.perf_counter()
        # relay-shaped: rounds of batch * PARTITIONS rows, one batch per partition
        for first in range(0, n, batch * PARTITIONS):
            built = []
            for p in range(PARTITIONS):
                b = producer.create_batch()
                for i in range(first + p, min(n, first + batch * PARTITIONS), PARTITIONS):
                    b.append(key=keys[i], value=values[i], timestamp=None,
                             headers=[("csc-epoch", b"00000000000000000000-abcdef12")])
                if b.record_count():
                    built.append((b, await producer.send_batch(b, topic, partition=p)))
            await asyncio.gather(*(f for _, f in built))
            wire += sum(b.size() for b, _ in built)
        produce_s = time.perf_counter() - t0
        producer_cpu = time.process_time() - cpu0
        broker_produce = cpu_of(broker_pid) - broker0
    finally:
        await producer.stop()
    consumer = new_consumer(cfg, group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        got, checked = 0, False
        broker0, cpu0, t0 = cpu_of(broker_pid), time.process_time(), time.perf_counter()
        while got < n + 1:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in fetched.values():
                got += len(records)
                if not checked:
                    for r in records:
                        if r.key != b"warm":
                            assert r.value is not None
                            Envelope.from_bytes(r.value)  # it arrives intact
                            checked = True
                            break
        consume_s = time.perf_counter() - t0
        consumer_cpu = time.process_time() - cpu0
        broker_consume = cpu_of(broker_pid) - broker0
    finally:
        await consumer.stop()
    return {
        "bytes": wire / n, "produce": n / produce_s, "consume": n / consume_s,
        "producer_us": producer_cpu / n * 1e6, "consumer_us": consumer_cpu / n * 1e6,
        "broker_us": (broker_produce + broker_consume) / n * 1e6,
    }


async def main_async(args: argparse.Namespace, bootstrap: str, broker_pid: int) -> None:
    events = [BenchThing(subject=f"s{i % 1000}", seq=i) for i in range(args.events)]
    envelopes = [Envelope.wrap(e, producer="bench") for e in events]
    values = [env.to_bytes() for env in envelopes]
    keys = [env.subject.encode() for env in envelopes]
    raw = statistics.mean(len(v) for v in values)
    order = codecs()
    print(f"{args.events:,} envelopes of {raw:.0f} bytes (value), {args.batch} records per "
          f"partition batch; codecs: {', '.join(c or 'none' for c in order)}")
    results: dict[str, list[dict[str, float]]] = {}
    for run in range(args.repeat):
        for codec in (order if run % 2 == 0 else list(reversed(order))):
            r = await one_run(bootstrap, broker_pid, codec, values, keys, args.batch, run)
            results.setdefault(codec or "none", []).append(r)
    print(f"{'codec':<7} {'bytes/record':>13} {'produce/s':>10} {'consume/s':>10} "
          f"{'producer µs':>12} {'consumer µs':>12} {'broker µs':>10} {'total µs':>9}")
    for name, runs in results.items():
        m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        total = m["producer_us"] + m["consumer_us"] + m["broker_us"]
        print(f"{name:<7} {m['bytes']:>13.1f} {m['produce']:>10,.0f} {m['consume']:>10,.0f} "
              f"{m['producer_us']:>12.1f} {m['consumer_us']:>12.1f} {m['broker_us']:>10.1f} "
              f"{total:>9.1f}")
    print(f"(medians of {args.repeat} runs; CPU per event, read from the process clocks; "
          f"load average {os.getloadavg()[0]:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=125)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    broker = LocalBroker(free_port())
    broker.start()
    try:
        assert broker.proc is not None
        asyncio.run(main_async(args, broker.bootstrap, broker.proc.pid))
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
