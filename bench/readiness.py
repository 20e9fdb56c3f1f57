"""Benchmark: readiness ingest (NDJSON feed and topic) and the Assessment Dashboard.

Starts its own PostgreSQL (durable) and broker on free ports, the readiness service (one
uvicorn worker) as a separate process, and a stand-in for identity's JWKS and groups'
access routes in this process. Then:

  1. ingest: --customers customers, --records records (the four kinds, about half of them
     assessment completions over 12 catalogue assessments) streamed as NDJSON to
     POST /v1/feeds/readiness with a readiness:feed client credential, in --streams
     parallel requests; records/s end to end (HTTP, validation, COPY, upsert, commit);
  2. topic: --topic-records more records published to portal.readiness.v1, records/s
     from the first send until the last one is stored;
  3. the dashboard of a --members member group (a parent with 5 subgroups, from groups'
     MemberAdded events) over the 12 assessments with include_subgroups=true:
     --requests requests, --concurrency at once, p50/p95/max over HTTP; and one people
     page and one CSV export of one assessment.

    .venv/bin/python bench/readiness.py [--customers 200000] [--records 2000000]
        [--topic-records 100000] [--members 5000] [--requests 400] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI

# this script's folder (sys.path[0]) off the path: its name would hide the readiness package
sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import bench_stack, pct, wait_ready
from shared.devstack.processes import free_port
from shared.schemas.envelope import Envelope
from shared.schemas.groups import GroupCreated, MemberAdded
from shared.schemas.readiness import ReadinessRecordReported
from shared.servicekit.broker import KafkaConfig, new_producer
from shared.servicekit.db import ensure_database
from tests.support.keys import TestSigner, add_token_exchange

SEEDED = ["career-cluster", "work-interest", "work-values", "skills"]
EXTRA = [f"bench-assessment-{i}" for i in range(1, 9)]
ASSESSMENTS = SEEDED + EXTRA  # 12
MODULES = ["ees-personal-ethic", "ees-work-ethic", "ees-communication", "ees-teamwork"]
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def stand_in(signer: TestSigner) -> FastAPI:
    """identity's JWKS, and groups answering yes to every access question."""
    app = FastAPI()

    @app.get("/.well-known/jwks.json")
    async def jwks() -> Any:
        return signer.jwks()

    add_token_exchange(app, signer)  # readiness narrows the staff token for groups here

    @app.get("/v1/access/customers/{cid}")
    async def access(cid: str) -> Any:
        return {"customer_id": cid, "via": []}

    @app.get("/v1/groups/{gid}")
    async def group(gid: str) -> Any:
        return {"id": gid}

    return app


def serve_in_thread(app: FastAPI, port: int) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server


def record(rng: random.Random, i: int, account: str) -> dict[str, Any]:
    """One record: half assessments, a quarter modules, the rest plans and outcomes."""
    at = T0 + timedelta(minutes=rng.randrange(60 * 24 * 600))
    stamp = at.isoformat()
    base = {"record_id": f"r{i}", "account_id": account, "occurred_at": stamp}
    roll = rng.random()
    if roll < 0.5:
        return {"kind": "assessment_completed", **base,
                "assessment_code": rng.choice(ASSESSMENTS), "version": "2024.1",
                "completed_at": stamp,
                "scores": {"realistic": rng.randrange(40), "social": rng.randrange(40),
                           "enterprising": rng.randrange(40)},
                "summary": "Top cluster: Health Science"}
    if roll < 0.75:
        return {"kind": "employment101_module_completed", **base,
                "module_code": rng.choice(MODULES), "score": rng.randrange(50, 101),
                "attempt": rng.randint(1, 3), "completed_at": stamp}
    if roll < 0.9:
        return {"kind": "employment101_plan_updated", **base,
                "goals": ["Find full-time work in logistics"],
                "steps": [{"title": "Finish forklift certification", "due_on": "2026-06-01",
                           "status": "in_progress"}]}
    return {"kind": "outcome_recorded", **base, "outcome_kind": "certificate",
            "title": "OSHA 10", "issuer": "OSHA", "issued_on": at.date().isoformat(),
            "credential_id": f"OSHA-{i}"}


def write_feed(path: Path, accounts: list[str], n: int, streams: int, seed: int) -> None:
    rng = random.Random(seed)
    files = [(path / f"feed-{s}.ndjson").open("w") for s in range(streams)]
    try:
        for i in range(n):
            files[i % streams].write(json.dumps(record(rng, i, rng.choice(accounts))) + "\n")
    finally:
        for f in files:
            f.close()


async def stream_file(client: httpx.AsyncClient, path: Path, headers: dict[str, str]
                      ) -> dict[str, Any]:
    async def chunks() -> Any:
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                yield block

    r = await client.post("/v1/feeds/readiness", content=chunks(), headers=headers,
                          timeout=3600)
    r.raise_for_status()
    return dict(r.json())


def encode(events: list[Any], who: str) -> list[tuple[str, bytes, bytes]]:
    out = []
    for ev in events:
        env = Envelope.wrap(ev, producer=who)
        out.append((ev.TOPIC, env.to_bytes(), env.subject.encode()))
    return out


async def publish(producer: Any, messages: list[tuple[str, bytes, bytes]]) -> None:
    futures = []
    for topic, value, key in messages:
        futures.append(await producer.send(topic, value, key=key))
        if len(futures) >= 2000:
            await asyncio.gather(*futures)
            futures = []
    await asyncio.gather(*futures)


async def wait_count(pool: asyncpg.Pool, sql: str, target: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await pool.fetchval(sql) >= target:
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"not reached within {timeout}s: {sql} >= {target}")


async def main(args: argparse.Namespace) -> None:
    signer = TestSigner()
    feed_headers = {"Authorization": "Bearer " + signer.token(
        "bench-portal", kind="client", scope="readiness:feed", ttl=7200),
        "Content-Type": "application/x-ndjson"}
    staff_headers = {"Authorization": "Bearer " + signer.token(
        str(uuid.uuid4()), kind="staff", roles=["admin"], ttl=7200)}
    rng = random.Random(7)
    accounts = [str(uuid.UUID(int=rng.getrandbits(128), version=4))
                for _ in range(args.customers)]

    with bench_stack() as stack, tempfile.TemporaryDirectory() as tmp:
        aux_port, port = free_port(), free_port()
        serve_in_thread(stand_in(signer), aux_port)
        dsn = stack.pg.dsn("readiness")
        await ensure_database(stack.pg.dsn("postgres"), "readiness")
        env = {**__import__("os").environ, "CSC_ENV": "test",
               "CSC_KAFKA_BOOTSTRAP": stack.broker.bootstrap, "CSC_LOG_LEVEL": "WARNING",
               "CSC_KAFKA_CONSUMER_MODE": "assign",
               "CSC_JWKS_URL": f"http://127.0.0.1:{aux_port}/.well-known/jwks.json",
               "READINESS_DATABASE_URL": dsn,
               "READINESS_GROUPS_URL": f"http://127.0.0.1:{aux_port}"}
        proc = stack.start("readiness", port, env)
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base, proc, "readiness")
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        assert pool is not None
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            for i, code in enumerate(EXTRA, start=5):
                r = await client.put(f"/v1/catalogue/assessments/{code}", headers=staff_headers,
                                     json={"name": f"Bench Assessment {i}", "position": i})
                r.raise_for_status()

            print(f"writing {args.records:,} records for {args.customers:,} customers...",
                  flush=True)
            write_feed(Path(tmp), accounts, args.records, args.streams, seed=11)
            t = time.perf_counter()
            answers = await asyncio.gather(*(
                stream_file(client, Path(tmp) / f"feed-{s}.ndjson", feed_headers)
                for s in range(args.streams)))
            took = time.perf_counter() - t
            accepted = sum(a["accepted"] for a in answers)
            rejected = sum(a["rejected"] for a in answers)
            print(f"feed ingest: {args.records:,} records in {took:.1f}s = "
                  f"{args.records / took:,.0f} records/s end to end "
                  f"({args.streams} streams; accepted {accepted:,}, rejected {rejected})",
                  flush=True)
            stored = await pool.fetchval("SELECT count(*) FROM readiness_records")
            print(f"  stored records: {stored:,}")

            # the topic: the same pipeline through the records consumer
            producer = new_producer(KafkaConfig(stack.broker.bootstrap, client_id="bench"))
            await producer.start()
            try:
                trng = random.Random(13)
                messages = encode([ReadinessRecordReported(**record(
                    trng, args.records + i, trng.choice(accounts)))
                    for i in range(args.topic_records)], "portal")
                target = stored + args.topic_records
                t = time.perf_counter()
                await publish(producer, messages)
                sent = time.perf_counter() - t
                await wait_count(pool, "SELECT count(*) FROM readiness_records", target, 1800)
                took = time.perf_counter() - t
                print(f"topic ingest: {args.topic_records:,} records in {took:.1f}s = "
                      f"{args.topic_records / took:,.0f} records/s (send to stored; sending took "
                      f"{sent:.1f}s)", flush=True)

                # a group of --members members: a parent and 5 subgroups
                parent = uuid.uuid4()
                subs = [uuid.uuid4() for _ in range(5)]
                members = random.Random(17).sample(accounts, args.members)
                group_events: list[Any] = [GroupCreated(group_id=parent, kind="personal",
                                                        name="Bench cohort")]
                group_events += [GroupCreated(group_id=s, kind="personal", name=f"Sub {i}",
                                              parent_group_id=parent)
                                 for i, s in enumerate(subs)]
                group_events += [MemberAdded(group_id=subs[i % 5], kind="personal",
                                             customer_id=uuid.UUID(m), via="staff")
                                 for i, m in enumerate(members)]
                await publish(producer, encode(group_events, "groups"))
                await wait_count(pool, "SELECT count(*) FROM group_members", args.members, 600)
            finally:
                await producer.stop()

            # what autovacuum does soon after a bulk load, done now: the visibility map lets
            # the dashboard's index-only scans skip the heap, and the planner gets statistics
            t = time.perf_counter()
            await pool.execute("VACUUM (ANALYZE) readiness_records")
            await pool.execute("VACUUM (ANALYZE) group_members")
            print(f"vacuum (analyze) after the load: {time.perf_counter() - t:.1f}s", flush=True)
            url = f"/v1/groups/{parent}/assessment-dashboard"
            first = (await client.get(url, headers=staff_headers)).json()
            assert first["members"] == args.members, first["members"]
            assert len(first["assessments"]) == 12
            done = sum(a["completed"] for a in first["assessments"])
            print(f"dashboard: {first['members']:,} members, 12 assessments, "
                  f"{done:,} completions counted", flush=True)
            for _ in range(20):  # warm up
                await client.get(url, headers=staff_headers)
            for concurrency in sorted({1, args.concurrency}):
                latencies: list[float] = []
                queue = list(range(args.requests))

                async def worker(queue: list[int], latencies: list[float]) -> None:
                    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
                        while queue:
                            queue.pop()
                            t = time.perf_counter()
                            r = await c.get(url, headers=staff_headers)
                            latencies.append((time.perf_counter() - t) * 1000)
                            assert r.status_code == 200

                t = time.perf_counter()
                await asyncio.gather(*(worker(queue, latencies) for _ in range(concurrency)))
                took = time.perf_counter() - t
                print(f"dashboard over HTTP: {args.requests} requests, {concurrency} at once: "
                      f"{args.requests / took:,.0f}/s, p50 {pct(latencies, 0.5):.1f} ms, "
                      f"p95 {pct(latencies, 0.95):.1f} ms, max {max(latencies):.1f} ms",
                      flush=True)
            ranged = []
            for _ in range(50):
                t = time.perf_counter()
                await client.get(url, headers=staff_headers,
                                 params={"from": "2025-06-01", "to": "2025-12-31"})
                ranged.append((time.perf_counter() - t) * 1000)
            print(f"  with a date range: p50 {pct(ranged, 0.5):.1f} ms, "
                  f"p95 {pct(ranged, 0.95):.1f} ms")
            if args.explain:
                from readiness import repository as repo

                async with pool.acquire() as conn:
                    t = time.perf_counter()
                    await repo.dashboard_counts(conn, parent, True, None, None)
                    print(f"  counts query alone: {(time.perf_counter() - t) * 1000:.1f} ms")
                    await conn.execute("PREPARE q AS " + repo.DASHBOARD_COUNTS)
                    plan = await conn.fetch(
                        f"EXPLAIN ANALYZE EXECUTE q('{parent}', true, NULL, NULL)")
                    print("\n".join(r[0] for r in plan))
            people_url = f"{url}/career-cluster"
            t = time.perf_counter()
            page = await client.get(people_url, headers=staff_headers,
                                    params={"status": "not_completed", "limit": "50"})
            page_ms = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            csv = await client.get(people_url, headers=staff_headers, params={"format": "csv"})
            csv_ms = (time.perf_counter() - t) * 1000
            print(f"  people page (50): {page_ms:.1f} ms ({len(page.json()['items'])} rows); "
                  f"CSV of {len(csv.text.splitlines()) - 1:,} rows: {csv_ms:.1f} ms")
        await pool.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--customers", type=int, default=200_000)
    p.add_argument("--records", type=int, default=2_000_000)
    p.add_argument("--streams", type=int, default=2)
    p.add_argument("--topic-records", type=int, default=100_000)
    p.add_argument("--members", type=int, default=5000)
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--explain", action="store_true", help="time and explain the SQL alone")
    asyncio.run(main(p.parse_args()))
