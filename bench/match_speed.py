"""Benchmark: person matching at scale.

Starts its own PostgreSQL (durable, as `make dev`) and broker, loads N synthetic
accounts (default 2,000,000) with `csc identity import-customers`, then prints:

  * the import's rows per second (the command's own figure, and wall time);
  * p50/p95/p99 of the match use case in-process (`identity.matches.search`:
    candidate retrieval, scoring, the audit row), for queries made from accounts
    with errors, and for people who are not there;
  * matches per second over HTTP (`POST /v1/matches`, one uvicorn worker), the
    load sent by a lean keep-alive client so that it is the service that is timed.

The import's CustomerAccountCreated events are removed (as if sent and pruned
long ago) before the service starts, so the duplicates queue does not fill
itself from two million events on the same two cores while matches are timed.

    .venv/bin/python bench/match_speed.py [--accounts 2000000] [--queries 3000] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import (
    CSC,
    PASSWORD,
    LeanClient,
    bench_stack,
    identity_env,
    pct,
    person,
    wait_ready,
    write_accounts,
)
from shared.devstack.processes import free_port


def query_for(rng: random.Random, p: dict[str, str]) -> dict[str, Any]:
    """The person as staff might type them years later: one error, maybe no SSN."""
    q: dict[str, Any] = {"first_name": p["first_name"], "last_name": p["last_name"],
                         "date_of_birth": p["date_of_birth"]}
    if p["ssn"] and rng.random() < 0.5:
        q["ssn"] = p["ssn"]
    kind = rng.randrange(4)
    if kind == 0:
        name = q["last_name"]
        i = rng.randrange(len(name))
        q["last_name"] = name[:i] + name[i + 1:] if len(name) > 3 else name
    elif kind == 1:
        d = date.fromisoformat(q["date_of_birth"])
        if d.day <= 12:
            q["date_of_birth"] = d.replace(month=d.day, day=d.month).isoformat()
    elif kind == 2:
        q["first_name"], q["last_name"] = q["last_name"], q["first_name"]
    return q


async def prepare_service(dsn: str) -> str:
    """Staff to sign in as, and the import's events marked sent (see the docstring)."""
    import asyncpg

    from identity.deps import Deps
    from identity.service.accounts import create_staff
    from identity.settings import IdentitySettings
    from shared.servicekit.db import create_pool

    pool = await create_pool(dsn)
    await create_staff(pool, Deps.from_settings(IdentitySettings()), username="bench.staff",
                       first_name="Pat", last_name="Jones", email=None, roles=["staff"],
                       password=PASSWORD)
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    await conn.execute("TRUNCATE outbox")  # as if sent and pruned long ago
    await conn.close()
    await pool.close()
    return "bench.staff"


async def in_process(dsn: str, queries: list[dict[str, Any]]) -> list[float]:
    import uuid

    from identity.domain.accounts import MatchFields, clean_match_fields
    from identity.service import matcher as matcher_svc
    from identity.service import matching as matches
    from identity.settings import IdentitySettings
    from shared.servicekit.db import create_pool

    pool = await create_pool(dsn, min_size=1, max_size=2)
    matcher = matcher_svc.Matcher.from_settings(IdentitySettings())
    staff = uuid.uuid4()
    out = []
    today = date.today()
    for q in queries:
        fields = clean_match_fields(MatchFields(
            q.get("first_name"), q.get("last_name"), date.fromisoformat(q["date_of_birth"]),
            q.get("ssn")), today=today)
        t = time.perf_counter()
        await matches.search(pool, matcher, fields, staff_id=staff)
        out.append((time.perf_counter() - t) * 1000)
    await pool.close()
    return out


async def over_http(port: int, staff: str, queries: list[dict[str, Any]], seconds: float,
                    concurrency: int) -> tuple[int, float, list[float]]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        r = await c.post("/v1/auth/token", data={"username": staff, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    requests = [LeanClient.encode("POST", "/v1/matches", json.dumps(q).encode(), headers)
                for q in queries]
    deadline = time.perf_counter() + seconds
    lat: list[float] = []

    async def worker(k: int) -> None:
        client = LeanClient("127.0.0.1", port)
        i = k
        try:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                status, body = await client.send(requests[i % len(requests)])
                assert status == 200, body
                lat.append((time.perf_counter() - t) * 1000)
                i += concurrency
        finally:
            await client.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return len(lat), time.perf_counter() - start, lat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=2_000_000)
    parser.add_argument("--queries", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with bench_stack() as stack:
        pg = stack.pg
        env = identity_env(pg.dsn(), stack.broker.bootstrap)
        os.environ.update(env)
        csv_path = stack.tmp / "accounts.csv"
        t = time.perf_counter()
        sample = write_accounts(csv_path, args.accounts, args.seed, keep=5000)
        took = time.perf_counter() - t
        print(f"{args.accounts:,} synthetic accounts written in {took:.0f} s;"
              f" {os.cpu_count()} cores")
        subprocess.run([CSC, "migrate", "identity"],
                       env=env, check=True, capture_output=True)
        t = time.perf_counter()
        done = subprocess.run(
            [CSC, "identity", "import-customers",
             str(csv_path), "--batch-rows", "10000"],
            env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"import failed: {done.stderr.strip()[-2000:]}")
        wall = time.perf_counter() - t
        print(f"import: {done.stdout.strip().splitlines()[-1]}")
        print(f"  wall time {wall:.0f} s = {args.accounts / wall:,.0f} rows/s"
              " (process start and the line count included)")
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", (
            "import asyncio, asyncpg, os\n"
            "async def go():\n"
            "    c = await asyncpg.connect(os.environ['IDENTITY_DATABASE_URL'])\n"
            "    await c.execute('VACUUM ANALYZE customers')\n"
            "    await c.execute('VACUUM ANALYZE customer_identifiers')\n"
            "asyncio.run(go())\n")], env=env, check=True)
        print(f"  VACUUM ANALYZE afterwards: {time.perf_counter() - t:.0f} s")

        rng = random.Random(args.seed + 1)
        present = [query_for(rng, rng.choice(sample)) for _ in range(args.queries)]
        absent = [query_for(rng, person(rng)) for _ in range(args.queries // 3)]
        staff = asyncio.run(prepare_service(pg.dsn()))
        for label, qs in (("people who are there", present), ("people who are not", absent)):
            lat = asyncio.run(in_process(pg.dsn(), qs))
            print(f"match use case in-process, {label} ({len(qs)} queries): "
                  f"p50 {statistics.median(lat):.2f} ms, p95 {pct(lat, 0.95):.2f} ms, "
                  f"p99 {pct(lat, 0.99):.2f} ms")

        port = free_port()
        proc = stack.start("identity", port, env)
        url = f"http://127.0.0.1:{port}"
        asyncio.run(wait_ready(url, proc, "identity"))
        n, elapsed, lat = asyncio.run(
            over_http(port, staff, present + absent, args.seconds, args.concurrency))
        print(f"POST /v1/matches over HTTP, one worker, concurrency {args.concurrency}: "
              f"{n / elapsed:,.0f} matches/s, p50 {statistics.median(lat):.1f} ms, "
              f"p99 {pct(lat, 0.99):.1f} ms")


if __name__ == "__main__":
    main()
