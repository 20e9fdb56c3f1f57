"""Benchmark: one group message to many recipients, into the local SMTP sink.

Starts its own PostgreSQL and broker (bench_stack), the devstack SMTP sink in its own
process, and notify (uvicorn, one worker). notify first learns N customers from
identity's CustomerAccountCreated (E of them with an email); then one
GroupMessageRequested goes out in chunks, as groups sends it. Prints:

  * inbox: time from the event to the last inbox row, and inbox writes/s;
  * email: time from the event to the last delivery marked sent, and emails/s
    (over the sending window and end to end);
  * that every email reached the sink (.eml files) and every delivery ended 'sent'.

    .venv/bin/python bench/notify_throughput.py [--recipients 5000] [--with-email 4000]
        [--chunk 500] [--pool 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import bench_stack, wait_ready
from shared.devstack.processes import free_port, wait_for_port
from shared.schemas.base import Event
from shared.schemas.envelope import Envelope
from shared.schemas.groups import GroupMessageRequested
from shared.schemas.identity import CustomerAccountCreated
from shared.servicekit.broker import KafkaConfig, new_producer
from shared.servicekit.db import ensure_database


async def publish(bootstrap: str, events: Sequence[tuple[Event, str]]) -> None:
    producer = new_producer(KafkaConfig(bootstrap=bootstrap, client_id="bench"))
    await producer.start()
    try:
        futures = []
        for event, by in events:
            env = Envelope.wrap(event, producer=by)
            futures.append(await producer.send(
                event.TOPIC, env.to_bytes(), key=env.subject.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def wait_count(pool: asyncpg.Pool, sql: str, want: int, *args: object,
                     timeout: float = 600, interval: float = 0.25) -> float:
    """Poll until the count reaches ``want``; returns the wall time it was seen. The
    figures come from the rows' own times (received_at, sent_at), not from this poll:
    it polls slowly so as not to measure its own count(*) queries (at 10 ms they were
    a good part of PostgreSQL's CPU)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if int(await pool.fetchval(sql, *args)) >= want:
            return time.time()
        await asyncio.sleep(interval)
    raise SystemExit(f"timed out waiting for {want}: {sql}")


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants so far (Linux /proc)."""
    try:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    parents[int(entry)] = int(_stat(int(entry))[1])
                except (OSError, ValueError, IndexError):
                    continue
        tree, frontier = {pid}, [pid]
        while frontier:
            nxt = [c for c, p in parents.items() if p in frontier and c not in tree]
            tree.update(nxt)
            frontier = nxt
        ticks = 0
        for p in tree:
            try:
                fields = _stat(p)
                ticks += int(fields[11]) + int(fields[12])
            except (OSError, ValueError, IndexError):
                continue
        return ticks / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")


async def run(args: argparse.Namespace, dsn: str, bootstrap: str, pids: dict[str, int]
              ) -> float:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    assert pool is not None
    tag = uuid.uuid4().hex[:6]
    ids = [uuid.uuid4() for _ in range(args.recipients)]
    accounts = [
        (CustomerAccountCreated(
            account_id=cid, username=f"u{i}{tag}", first_name="Pat", last_name=f"Lee{i}",
            email=f"p{i}.{tag}@example.org" if i < args.with_email else None,
            source="import"), "identity")
        for i, cid in enumerate(ids)]
    t = time.monotonic()
    await publish(bootstrap, accounts)
    await wait_count(pool, "SELECT count(*) FROM customers", args.recipients)
    print(f"directory: {args.recipients:,} customers learned in {time.monotonic() - t:.1f} s")

    message_id = uuid.uuid4()
    chunks = [ids[i:i + args.chunk] for i in range(0, len(ids), args.chunk)]
    events = [(GroupMessageRequested(
        message_id=message_id, group_id=uuid.uuid4(), staff_id=uuid.uuid4(),
        subject="Job fair on Friday", body="Bring your resume.\nDoors open at 9.",
        recipient_ids=chunk, chunk_index=n, chunk_count=len(chunks)), "groups")
        for n, chunk in enumerate(chunks)]
    cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    t0 = time.time()
    await publish(bootstrap, events)
    inbox_seen = await wait_count(
        pool, "SELECT count(*) FROM inbox_items WHERE message_id = $1", args.recipients,
        message_id)
    sent_seen = await wait_count(
        pool, "SELECT count(*) FROM deliveries WHERE message_id = $1 AND channel = 'email'"
        " AND status = 'sent'", args.with_email, message_id)
    cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
    row = await pool.fetchrow(
        "SELECT min(received_at) AS first_inbox, max(received_at) AS last_inbox"
        " FROM inbox_items WHERE message_id = $1", message_id)
    sent = await pool.fetchrow(
        "SELECT min(sent_at) AS first, max(sent_at) AS last, count(*) AS n,"
        " count(*) FILTER (WHERE attempts > 1) AS retried"
        " FROM deliveries WHERE message_id = $1 AND channel = 'email'", message_id)
    statuses = await pool.fetch(
        "SELECT channel, status, count(*) AS n FROM deliveries WHERE message_id = $1"
        " GROUP BY 1, 2 ORDER BY 1, 2", message_id)
    await pool.close()
    assert row is not None and sent is not None

    start = datetime.fromtimestamp(t0, UTC)
    inbox_s = (row["last_inbox"] - start).total_seconds()
    email_s = (sent["last"] - start).total_seconds()
    print(f"message to {args.recipients:,} recipients ({args.with_email:,} with email), "
          f"{len(chunks)} chunks of {args.chunk}; SMTP pool {args.pool}; {os.cpu_count()} cores")
    print(f"  inbox: last of {args.recipients:,} rows {inbox_s:.2f} s after the event "
          f"(seen by polling at {inbox_seen - t0:.2f} s): "
          f"{args.recipients / max(inbox_s, 1e-9):,.0f} inbox writes/s")
    print(f"  email: last of {sent['n']:,} marked sent {email_s:.2f} s after the event "
          f"(seen at {sent_seen - t0:.2f} s): {sent['n'] / max(email_s, 1e-9):,.0f} emails/s "
          f"end to end; {sent['retried']} retried")
    print("  deliveries: " + ", ".join(f"{r['channel']} {r['status']} {r['n']}"
                                       for r in statuses))
    print("  CPU used meanwhile: " + ", ".join(
        f"{name} {secs:.2f} s ({secs / max(1, args.with_email) * 1000:.2f} ms per email)"
        for name, secs in cpu.items()) + f"; load average {os.getloadavg()[0]:.1f}")
    return t0


def sink_arrivals(mail_dir: Path, t0: float) -> None:
    """When the sink stored each message (its file names start with the unix time in ns)."""
    times = sorted(int(p.name.split("-", 1)[0]) / 1e9 for p in mail_dir.glob("*.eml"))
    if len(times) > 1:
        span = times[-1] - times[0]
        print(f"  sink: {len(times):,} .eml files; first {times[0] - t0:.2f} s, last "
              f"{times[-1] - t0:.2f} s after the event: {len(times) / span:,.0f} emails/s "
              "from the first arrival to the last")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--with-email", type=int, default=4000)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--pool", type=int, default=8, help="SMTP connections")
    args = parser.parse_args()
    with bench_stack() as stack:
        asyncio.run(ensure_database(stack.pg.dsn(), "notify"))
        dsn = stack.pg.dsn("notify")
        # the sink's spool in memory where there is one: on a shared disk, file creation
        # stalls (ms each) would measure the disk, not notify
        shm = Path("/dev/shm")
        spool = tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else stack.tmp)
        mail_dir = Path(spool.name) / "mail"
        smtp_port, port = free_port(), free_port()
        sink = subprocess.Popen(
            [sys.executable, "-m", "shared.devstack.smtp_sink", "--dir", str(mail_dir),
             "--smtp-port", str(smtp_port), "--no-web"], stdout=subprocess.DEVNULL)
        stack.procs.append(sink)
        wait_for_port(smtp_port, sink, 30, "SMTP sink")
        env = {**os.environ, "CSC_ENV": "test",
               "CSC_LOG_LEVEL": os.environ.get("CSC_LOG_LEVEL", "WARNING"),
               "CSC_KAFKA_BOOTSTRAP": stack.broker.bootstrap,
               "CSC_KAFKA_CONSUMER_MODE": "assign", "NOTIFY_DATABASE_URL": dsn,
               "NOTIFY_SMTP_PORT": str(smtp_port), "NOTIFY_SMTP_POOL_SIZE": str(args.pool),
               "NOTIFY_WORKER_POLL_INTERVAL": "0.05", "NOTIFY_WORKER_BATCH_SIZE": "1000",
               "NOTIFY_WORKER_FLUSH_SIZE": "200", "NOTIFY_OUTBOX_POLL_INTERVAL": "0.2"}
        proc = stack.start("notify", port, env)
        asyncio.run(wait_ready(f"http://127.0.0.1:{port}", proc, "notify"))
        with spool:
            pids = {"notify": proc.pid, "SMTP sink": sink.pid}
            for name, server in (("PostgreSQL", stack.pg.proc), ("broker", stack.broker.proc)):
                if server is not None:
                    pids[name] = server.pid
            t0 = asyncio.run(run(args, dsn, stack.broker.bootstrap, pids))
            sink_arrivals(mail_dir, t0)


if __name__ == "__main__":
    main()
