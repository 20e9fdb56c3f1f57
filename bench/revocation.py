"""Benchmark: how long a signed-out session's access token keeps working elsewhere.

Starts its own PostgreSQL and broker on free ports and runs identity, groups and
enrollment (one uvicorn worker each, separate processes). For each of N staff
members (default 20), one after another: sign in, check that groups and enrollment
accept the token, sign out at identity (`POST /v1/me/sign-out`), then ask groups and
enrollment every 10 ms until each answers 401. It prints p50/p95/max of the time
from identity's 204 to each service's first 401.

    .venv/bin/python bench/revocation.py [--staff 20] [--mode assign|group]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import CSC, PASSWORD, bench_stack, identity_env, pct, wait_ready
from bench.add_customer import sql
from shared.devstack.processes import free_port

CHECKS = {"groups": "/v1/groups", "enrollment": "/v1/programs"}


async def setup_staff(identity_dsn: str, n: int) -> None:
    from identity.deps import Deps
    from identity.service.accounts import create_staff
    from identity.settings import IdentitySettings
    from shared.servicekit.db import create_pool

    pool = await create_pool(identity_dsn)
    ids = Deps.from_settings(IdentitySettings())
    for i in range(n):
        await create_staff(pool, ids, username=f"bench.staff{i}", first_name="Robin",
                           last_name="Case", email=None, roles=["staff"], password=PASSWORD)
    await pool.close()


async def until(client: httpx.AsyncClient, path: str, headers: dict[str, str], status: int,
                timeout: float = 60.0) -> float:
    """Ask every 10 ms until the answer is ``status``; when it came (monotonic)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if (await client.get(path, headers=headers)).status_code == status:
            return time.monotonic()
        await asyncio.sleep(0.01)
    raise SystemExit(f"{path} never answered {status}")


async def run(urls: dict[str, str], n: int) -> dict[str, list[float]]:
    clients = {name: httpx.AsyncClient(base_url=url, timeout=30) for name, url in urls.items()}
    lat: dict[str, list[float]] = {name: [] for name in CHECKS}
    try:
        for i in range(n):
            r = await clients["identity"].post("/v1/auth/token", data={
                "username": f"bench.staff{i}", "password": PASSWORD})
            r.raise_for_status()
            headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
            for name, path in CHECKS.items():  # known there (the staff event arrived)
                await until(clients[name], path, headers, 200)
            out = await clients["identity"].post("/v1/me/sign-out", headers=headers)
            assert out.status_code == 204, out.text
            signed_out = time.monotonic()
            refused = await asyncio.gather(*(until(clients[name], path, headers, 401)
                                             for name, path in CHECKS.items()))
            for name, at in zip(CHECKS, refused, strict=True):
                lat[name].append((at - signed_out) * 1000)
    finally:
        for c in clients.values():
            await c.aclose()
    return lat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--staff", type=int, default=20)
    parser.add_argument("--mode", choices=["assign", "group"], default="assign",
                        help="the services' consumer mode (compose runs group)")
    args = parser.parse_args()
    with bench_stack() as stack:
        pg = stack.pg
        dsns = {n: pg.dsn(n) for n in ("identity", "groups", "enrollment")}
        ports = {n: free_port() for n in dsns}
        env = identity_env(
            dsns["identity"], stack.broker.bootstrap, CSC_KAFKA_CONSUMER_MODE=args.mode,
            GROUPS_DATABASE_URL=dsns["groups"], ENROLLMENT_DATABASE_URL=dsns["enrollment"],
            CSC_JWKS_URL=f"http://127.0.0.1:{ports['identity']}/.well-known/jwks.json",
            CSC_GROUPS_URL=f"http://127.0.0.1:{ports['groups']}",
            ENROLLMENT_IDENTITY_URL=f"http://127.0.0.1:{ports['identity']}")
        os.environ.update(env)
        asyncio.run(sql(pg.dsn(), *(f"CREATE DATABASE {n}" for n in dsns)))
        subprocess.run([CSC, "migrate", *dsns], env=env, check=True, capture_output=True)
        asyncio.run(setup_staff(dsns["identity"], args.staff))
        urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
        for name in dsns:
            proc = stack.start(name, ports[name], env)
            asyncio.run(wait_ready(urls[name], proc, name))
        lat = asyncio.run(run(urls, args.staff))
        print(f"{os.cpu_count()} cores; consumer mode {args.mode}; {args.staff} sign-outs,"
              " time from identity's 204 to the service's first 401:")
        for name, values in lat.items():
            print(f"  {name:<11} p50 {pct(values, 0.5):6.0f} ms  p95 {pct(values, 0.95):6.0f}"
                  f" ms  max {max(values):6.0f} ms")


if __name__ == "__main__":
    main()
