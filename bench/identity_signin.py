"""Benchmark: identity sign-ins and customer creation over HTTP.

Starts its own PostgreSQL and broker on free ports and the identity service
(one uvicorn worker) as a separate process, then prints:

  * sign-ins per second and p50/p95 latency with many sign-ins at once, at the
    service's argon2id parameters, while a probe asks /healthz every 20 ms
    (its worst answer shows whether hashing stalls the event loop);
  * POST /v1/customers requests per second and p50/p95 (each hashes a
    temporary password and writes the account, audit row and event).

    .venv/bin/python bench/identity_signin.py [--signins 400] [--concurrency 16] [--customers 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import PASSWORD, bench_stack, identity_env, pct, person, wait_ready
from shared.devstack.processes import free_port


async def _probe(client: httpx.AsyncClient, stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        await client.get("/healthz")
        out.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(0.02)


async def _load(n: int, concurrency: int, call: object) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            t = time.perf_counter()
            await call(i)  # type: ignore[operator]
            latencies.append((time.perf_counter() - t) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, latencies


async def bench(args: argparse.Namespace, base_url: str, staff: list[str]) -> None:
    limits = httpx.Limits(max_connections=args.concurrency + 4)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client, \
            httpx.AsyncClient(base_url=base_url, timeout=30) as prober:
        stop = asyncio.Event()
        probes: list[float] = []

        async def sign_in(i: int) -> None:
            r = await client.post("/v1/auth/token",
                                  data={"username": staff[i % len(staff)], "password": PASSWORD})
            assert r.status_code == 200, r.text

        await sign_in(0)
        probe = asyncio.create_task(_probe(prober, stop, probes))
        elapsed, lat = await _load(args.signins, args.concurrency, sign_in)
        stop.set()
        await probe
        print(f"sign-in: {args.signins} at concurrency {args.concurrency}: "
              f"{args.signins / elapsed:,.1f}/s, p50 {statistics.median(lat):.0f} ms, "
              f"p95 {pct(lat, 0.95):.0f} ms")
        print(f"  /healthz meanwhile: {len(probes)} probes, p50 {statistics.median(probes):.1f} ms,"
              f" p99 {pct(probes, 0.99):.1f} ms, max {max(probes):.1f} ms")

        r = await client.post("/v1/auth/token", data={"username": staff[0], "password": PASSWORD})
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

        rng = random.Random(5)
        people = [person(rng) for _ in range(args.customers)]

        async def create(i: int) -> None:
            body = {**people[i], "identifiers": [{"kind": "idoc_number", "value": f"B{i:05d}"}]}
            r = await client.post("/v1/customers", headers=headers, json=body)
            if r.status_code == 409:  # a namesake: staff look, and create anyway
                rejected = [c["account_id"] for c in r.json()["candidates"]]
                r = await client.post("/v1/customers", headers=headers,
                                      json={**body, "rejected_account_ids": rejected})
            assert r.status_code == 201, r.text

        elapsed, lat = await _load(args.customers, 8, create)
        print(f"POST /v1/customers: {args.customers} at concurrency 8: "
              f"{args.customers / elapsed:,.1f}/s, p50 {statistics.median(lat):.0f} ms, "
              f"p95 {pct(lat, 0.95):.0f} ms")


async def make_staff(n: int) -> list[str]:
    from identity.app import SPEC
    from identity.deps import Deps
    from identity.service.accounts import create_staff
    from identity.settings import IdentitySettings
    from shared.servicekit.db import create_pool
    from shared.servicekit.runtime import migrate_database

    settings = IdentitySettings()
    dsn = settings.database_url.get_secret_value()
    await migrate_database(SPEC, dsn)
    pool = await create_pool(dsn)
    ids = Deps.from_settings(settings)
    names = [f"bench.staff{i}" for i in range(n)]
    for name in names:
        await create_staff(pool, ids, username=name, first_name="Pat", last_name="Jones",
                           email=None, roles=["staff"], password=PASSWORD)
    await pool.close()
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signins", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--customers", type=int, default=300)
    args = parser.parse_args()
    with bench_stack() as stack:
        port = free_port()
        env = identity_env(stack.pg.dsn(), stack.broker.bootstrap)
        os.environ.update(env)
        staff = asyncio.run(make_staff(20))
        from identity.settings import IdentitySettings

        s = IdentitySettings()
        print(f"argon2id m={s.argon2_memory_kib} KiB, t={s.argon2_time_cost}, "
              f"p={s.argon2_parallelism}, {s.password_hash_threads} hashing threads; "
              f"{os.cpu_count()} cores")
        proc = stack.start("identity", port, env)

        async def run() -> None:
            url = f"http://127.0.0.1:{port}"
            await wait_ready(url, proc, "identity")
            await bench(args, url, staff)

        asyncio.run(run())


if __name__ == "__main__":
    main()
