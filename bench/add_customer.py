"""Benchmark: Add Customer (Returning Citizens), the two steps over HTTP.

Starts its own PostgreSQL and broker on free ports, loads N existing accounts into
identity (default 200,000) with `csc identity import-customers`, runs identity and
enrollment (one uvicorn worker each) as separate processes, and then has case workers
do intakes side by side: step 1 (`POST /v1/returning-citizens/matches`: the whole
form checked, identity's matcher asked, the IDOC number looked up) and, with the
decision it leads to, step 2 (`POST /v1/returning-citizens`: link the strong match
and reject the rest, or reject every candidate and create an account, which hashes a
temporary password; then the enrollment and its event). About a third of the people
already have an account. It prints completed intakes per second and p50/p95/p99 of
each step, for each number of case workers at once.

The import's CustomerAccountCreated events are removed (as if sent and pruned) before
the services start, so neither identity's duplicates queue nor enrollment's consumer
works through 200,000 events on the same two cores while intakes are timed.

    .venv/bin/python bench/add_customer.py [--accounts 200000] [--intakes 400] [--concurrency 1,2,4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import (
    CSC,
    PASSWORD,
    bench_stack,
    identity_env,
    pct,
    person,
    wait_ready,
    write_accounts,
)
from shared.devstack.processes import free_port

INSTITUTIONS = ("kewanee-lsrc", "murphysboro-lsrc", "vienna", "dixon", "sheridan", "logan")
COUNTIES = ("cook", "will", "lake", "dupage", "kane", "winnebago", "peoria", "st-clair")
OFFENSES = ("burglary", "theft", "drug-possession", "drug-delivery", "robbery", "dui")


def intake_form(rng: random.Random, i: int, p: dict[str, str]) -> dict[str, Any]:
    idoc = f"{'ABCDEFGHJKLMNPRSTUVWXYZ'[i // 100000]}{i % 100000:05d}"
    enrolled = date.today() - timedelta(days=rng.randrange(1, 60))
    form: dict[str, Any] = {
        "parent_institution": rng.choice(INSTITUTIONS), "idoc_number": idoc,
        "idoc_number_confirmation": idoc, "first_name": p["first_name"],
        "last_name": p["last_name"], "date_of_birth": p["date_of_birth"],
        "counties_of_commitment": rng.sample(COUNTIES, rng.randint(1, 2)),
        "msr_date": (enrolled + timedelta(days=rng.randrange(0, 400))).isoformat(),
        "msr_county": rng.choice(COUNTIES), "offenses": rng.sample(OFFENSES, rng.randint(0, 2)),
        "enrollment_date": enrolled.isoformat(),
    }
    if p.get("ssn"):
        form["ssn"] = p["ssn"]
    return form


def decide(candidates: list[dict[str, Any]], enrolled: set[str]) -> dict[str, Any]:
    """What a case worker decides: link a strong match (unless that account is already in
    the program: then it is someone else), otherwise none was accurate."""
    ids = [c["account_id"] for c in candidates]
    if candidates and candidates[0]["band"] == "strong" and ids[0] not in enrolled:
        return {"link_account_id": ids[0], "rejected_account_ids": ids[1:]}
    return {"rejected_account_ids": ids}


async def setup_staff(identity_dsn: str, workers: int) -> None:
    from identity.deps import Deps
    from identity.service.accounts import create_staff
    from identity.settings import IdentitySettings
    from shared.servicekit.db import create_pool

    pool = await create_pool(identity_dsn)
    ids = Deps.from_settings(IdentitySettings())
    await create_staff(pool, ids, username="bench.admin", first_name="Ada", last_name="Min",
                       email=None, roles=["admin"], password=PASSWORD)
    for i in range(workers):
        await create_staff(pool, ids, username=f"bench.case{i}", first_name="Robin",
                           last_name="Case", email=None, roles=["reentry"], password=PASSWORD)
    await pool.close()


async def sql(dsn: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        for s in statements:
            await conn.execute(s)
    finally:
        await conn.close()


async def sign_in(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    r = await client.post("/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def authorize(identity: str, enrollment: str, workers: int) -> list[dict[str, str]]:
    """Sign the case workers in and have the admin authorize them for the program (once
    enrollment knows them from identity's staff events)."""
    async with httpx.AsyncClient(base_url=identity, timeout=30) as ida, \
            httpx.AsyncClient(base_url=enrollment, timeout=30) as enr:
        admin = await sign_in(ida, "bench.admin")
        tokens = []
        for i in range(workers):
            me = await sign_in(ida, f"bench.case{i}")
            staff_id = (await ida.get("/v1/me", headers=me)).json()["id"]
            for _ in range(300):
                r = await enr.put(f"/v1/programs/returning-citizens/staff/{staff_id}",
                                  headers=admin)
                if r.status_code in (200, 201):
                    break
                await asyncio.sleep(0.1)  # the staff event is still on its way
            else:
                raise SystemExit(f"could not authorize a case worker: {r.text}")
            tokens.append(me)
        return tokens


async def intakes(
    url: str, tokens: list[dict[str, str]], forms: list[dict[str, Any]], warmup: int
) -> tuple[float, list[float], list[float], list[float], int]:
    limits = httpx.Limits(max_connections=len(tokens) + 2)
    step1: list[float] = []
    created: list[float] = []
    linked: list[float] = []
    enrolled: set[str] = set()
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        async def one(form: dict[str, Any], headers: dict[str, str], timed: bool) -> None:
            t = time.perf_counter()
            r = await client.post("/v1/returning-citizens/matches", json=form, headers=headers)
            took1 = (time.perf_counter() - t) * 1000
            assert r.status_code == 200, r.text
            candidates = r.json()["candidates"]
            decision = decide(candidates, enrolled)
            t = time.perf_counter()
            r = await client.post("/v1/returning-citizens", json={**form, **decision},
                                  headers={**headers, "Idempotency-Key": form["idoc_number"]})
            if r.status_code == 409 and r.json()["type"].endswith("/already-enrolled"):
                # another case worker linked that account a moment ago: not this person
                decision = {"rejected_account_ids": [c["account_id"] for c in candidates]}
                r = await client.post("/v1/returning-citizens", json={**form, **decision},
                                      headers={**headers, "Idempotency-Key": "x" + form[
                                          "idoc_number"]})
            took2 = (time.perf_counter() - t) * 1000
            assert r.status_code == 201, r.text
            enrolled.add(r.json()["account_id"])
            if timed:
                step1.append(took1)
                (created if r.json()["account_created"] else linked).append(took2)

        for k, form in enumerate(forms[:warmup]):
            await one(form, tokens[k % len(tokens)], timed=False)
        queue = list(reversed(forms[warmup:]))

        async def worker(headers: dict[str, str]) -> None:
            while queue:
                await one(queue.pop(), headers, timed=True)

        start = time.perf_counter()
        await asyncio.gather(*(worker(h) for h in tokens))
        elapsed = time.perf_counter() - start
    return elapsed, step1, created, linked, len(forms) - warmup


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), 0 where it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _line(label: str, lat: list[float]) -> str:
    return (f"{label}: p50 {statistics.median(lat):.0f} ms, p95 {pct(lat, 0.95):.0f} ms, "
            f"p99 {pct(lat, 0.99):.0f} ms ({len(lat)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--intakes", type=int, default=400, help="per concurrency level")
    parser.add_argument("--concurrency", default="1,2,4",
                        help="case workers at once: one run per comma-separated value")
    parser.add_argument("--returning", type=float, default=0.33,
                        help="share of intakes for people who already have an account")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    warmup = 20
    with bench_stack() as stack:
        pg = stack.pg
        identity_dsn, enrollment_dsn = pg.dsn("identity"), pg.dsn("enrollment")
        env = identity_env(identity_dsn, stack.broker.bootstrap,
                           CSC_KAFKA_CONSUMER_MODE="assign", ENROLLMENT_DATABASE_URL=enrollment_dsn)
        os.environ.update(env)
        asyncio.run(sql(pg.dsn(), "CREATE DATABASE identity", "CREATE DATABASE enrollment"))
        subprocess.run([CSC, "migrate", "identity", "enrollment"], env=env, check=True,
                       capture_output=True)
        levels = [int(c) for c in args.concurrency.split(",")]
        csv_path = stack.tmp / "accounts.csv"
        returning = int(args.intakes * args.returning)
        sample = write_accounts(csv_path, args.accounts, args.seed,
                                keep=returning * len(levels))
        t = time.perf_counter()
        done = subprocess.run([CSC, "identity", "import-customers", str(csv_path),
                               "--batch-rows", "10000"], env=env, capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise SystemExit(f"import failed: {done.stderr.strip()[-2000:]}")
        print(f"{os.cpu_count()} cores; identity holds {args.accounts:,} existing accounts"
              f" (import: {done.stdout.strip().splitlines()[-1]},"
              f" {time.perf_counter() - t:.0f} s)")
        asyncio.run(sql(identity_dsn, "TRUNCATE outbox", "VACUUM ANALYZE customers",
                        "VACUUM ANALYZE customer_identifiers"))
        asyncio.run(setup_staff(identity_dsn, max(levels)))

        id_port, en_port = free_port(), free_port()
        identity_url = f"http://127.0.0.1:{id_port}"
        env["CSC_JWKS_URL"] = f"{identity_url}/.well-known/jwks.json"
        for package, port in (("identity", id_port), ("enrollment", en_port)):
            stack.start(package, port, env)
            asyncio.run(wait_ready(f"http://127.0.0.1:{port}", stack.procs[-1], package))
        enrollment_url = f"http://127.0.0.1:{en_port}"
        tokens = asyncio.run(authorize(identity_url, enrollment_url, max(levels)))

        rng = random.Random(args.seed + 1)
        serial = 0
        for level, workers in enumerate(levels):
            people = [*sample[level * returning:(level + 1) * returning]]
            people += [person(rng) for _ in range(args.intakes + warmup - len(people))]
            rng.shuffle(people)
            forms = [intake_form(rng, serial + i, p) for i, p in enumerate(people)]
            serial += len(forms)
            before = [cpu_seconds(p.pid) for p in stack.procs]
            elapsed, step1, created, linked, n = asyncio.run(
                intakes(enrollment_url, tokens[:workers], forms, warmup))
            used = [cpu_seconds(p.pid) - b for p, b in zip(stack.procs, before, strict=True)]
            print(f"{n} intakes by {workers} case worker(s) at once:"
                  f" {n / elapsed:.1f} completed intakes/s"
                  f" ({len(linked)} linked to an existing account, {len(created)} created)")
            print("  " + _line("step 1, POST /v1/returning-citizens/matches", step1))
            print("  " + _line("step 2, POST /v1/returning-citizens", created + linked))
            if created:
                print("    " + _line("creating an account", created))
            if linked:
                print("    " + _line("linking an account", linked))
            per = len(forms) / 1000
            print(f"  CPU per intake: identity {used[0] / per:.0f} ms, enrollment"
                  f" {used[1] / per:.0f} ms (PostgreSQL, the broker and this client besides)")


if __name__ == "__main__":
    main()
