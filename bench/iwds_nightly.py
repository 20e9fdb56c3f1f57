"""Benchmark: a nightly IWDS participants extract, first load then the delta run.

Generates N participants (default 1,000,000) across the 22 LWIAs, starts its own
PostgreSQL and broker on free ports and the sync-iwds service (whose outbox relay
publishes the events), then runs ``csc iwds import --feed participants FILE``
twice: the first extract, and a second with 2 % changed, 0.5 % added and 0.5 %
removed. For each run prints the wall time from the file to the last event
published, rows per second, and the peak RSS of the importing process and of the
service.

    .venv/bin/python bench/iwds_nightly.py [--rows 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import CSC, FIRST, LAST, bench_stack, start_service
from shared.devstack.processes import free_port
from shared.servicekit.db import ensure_database

HEADER = ["iwds_person_id", "worknet_account_id", "lwia_code", "office_code",
          "case_manager_staff_id", "first_name", "last_name", "date_of_birth", "program",
          "status", "exit_date", "updated_at"]
# the 22 LWIAs the benchmark spreads people over (IWDS numbers them 01 to 26)
LWIAS = [f"{n:02d}" for n in range(1, 27) if n not in (5, 12, 18, 21)]
PROGRAMS = ("WIOA-AD", "WIOA-DW", "WIOA-YO", "TAA", "WP")


def person(i: int, rng: random.Random, version: int = 0) -> list[str]:
    lwia = LWIAS[i % len(LWIAS)]
    dob = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
    exited = rng.random() < 0.2
    return [
        f"IW{i:08d}", "", lwia, f"{lwia}-{rng.randrange(1, 6):02d}",
        f"CM{rng.randrange(1, 4000):05d}", rng.choice(FIRST), rng.choice(LAST),
        dob.isoformat(), rng.choice(PROGRAMS), "exited" if exited else "active",
        (date(2026, 1, 1) + timedelta(days=rng.randrange(300))).isoformat() if exited else "",
        f"2026-11-{1 + version:02d}T02:00:00+00:00",
    ]


def generate(rows: int, directory: Path) -> tuple[Path, Path]:
    """The first extract and the next night's: 2 % changed, 0.5 % added, 0.5 % removed."""
    first, second = directory / "participants-1.csv", directory / "participants-2.csv"
    rng = random.Random(14)
    removed = set(rng.sample(range(rows), rows // 200))
    changed = set(rng.sample(range(rows), rows // 50)) - removed
    with first.open("w", newline="") as f1, second.open("w", newline="") as f2:
        w1, w2 = csv.writer(f1), csv.writer(f2)
        w1.writerow(HEADER)
        w2.writerow(HEADER)
        for i in range(rows):
            seed = random.Random(i)
            row = person(i, seed)
            w1.writerow(row)
            if i in removed:
                continue
            if i in changed:
                row = person(i, seed, version=1)
                row[3] = row[3][:-2] + "09"  # moved to another office
            w2.writerow(row)
        for i in range(rows, rows + rows // 200):
            w2.writerow(person(i, random.Random(i), version=1))
    return first, second


async def unpublished(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    finally:
        await conn.close()


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def run_import(path: Path, env: dict[str, str], dsn: str) -> tuple[float, float, int, str]:
    """(seconds to applied, seconds to published, peak RSS KiB of the import, summary)."""
    started = time.monotonic()
    proc = subprocess.run(
        [CSC, "iwds", "import", "--feed", "participants", str(path)], env=env,
        capture_output=True, text=True, check=False)
    applied = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"import failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    while asyncio.run(unpublished(dsn)):
        time.sleep(0.2)
    published = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return applied, published, peak, proc.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, help="write the files here and keep them")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        t = time.monotonic()
        first, second = generate(args.rows, directory)
        print(f"generated {args.rows:,} participants in {time.monotonic() - t:.1f} s")
        with bench_stack() as stack:
            asyncio.run(ensure_database(stack.pg.dsn(), "sync_iwds"))
            dsn = stack.pg.dsn("sync_iwds")
            env = {**os.environ, "CSC_ENV": "dev", "SYNC_IWDS_DATABASE_URL": dsn,
                   "CSC_KAFKA_BOOTSTRAP": stack.broker.bootstrap,
                   "SYNC_IWDS_OUTBOX_BATCH_SIZE": "2000", "SYNC_IWDS_OUTBOX_POLL_INTERVAL": "0.2",
                   "CSC_LOG_LEVEL": "WARNING"}
            port = free_port()
            service = start_service("sync_iwds", port, env)
            stack.procs.append(service)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    import httpx
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
            else:
                raise SystemExit("sync-iwds did not become ready")
            for name, path, rows in (("first load", first, args.rows),
                                     ("nightly delta", second, args.rows)):
                applied, published, peak, summary = run_import(path, env, dsn)
                print(f"{name}: {rows:,} rows; applied in {applied:.1f} s "
                      f"({rows / applied:,.0f} rows/s); events published after "
                      f"{published:.1f} s ({rows / published:,.0f} rows/s); "
                      f"import peak RSS {peak / 1024:.0f} MiB; "
                      f"service peak RSS {vm_hwm_kib(service.pid) / 1024:.0f} MiB")
                print(f"  {summary}")


if __name__ == "__main__":
    main()
