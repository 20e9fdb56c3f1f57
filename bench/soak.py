"""Soak: steady writes through identity and enrollment while faults strike, then a count.

    make soak                     # = .venv/bin/python bench/soak.py --minutes 5
    .venv/bin/python bench/soak.py --minutes 1 --rate 10

Starts the whole stack with `csc dev` (free ports, its own folder), which restarts
whatever dies. Writes `--rate` a second, alternating identity's `POST /v1/customers`
and enrollment's Add Customer (`POST /v1/returning-citizens`), each with an
Idempotency-Key and retried until it lands. Meanwhile, at random moments (bounded,
127.0.0.1 only), one fault at a time:

- broker cut off: the broker process stopped (SIGSTOP) for 10 s, then resumed;
- broker restarted empty: SIGKILL (csc dev starts a new one: memory storage);
- a service SIGKILLed mid-stream (identity or enrollment; csc dev restarts it);
- PostgreSQL connections killed mid-transaction (pg_terminate_backend).

Then, once the faults stop, it waits for the consumers and counts, per event the
producers wrote to their outboxes (events carry no SSN or secret, so reading them
is safe): lost (an event its consumer never applied), duplicated (applied more
than once) and the effects (every account in enrollment's directory, every IDOC
number in identity). It exits 1 unless all are 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import CSC, PASSWORD, person
from shared.cli.services import SERVICES
from shared.devstack.processes import free_port

CONSUMED = {  # consumer -> event types it applies from the other's outbox
    "enrollment": ("identity", ("CustomerAccountCreated", "CustomerAccountUpdated",
                                "StaffAccountCreated")),
    "identity": ("enrollment", ("CustomerEnrolled",)),
}


class Soak:
    def __init__(self, root: Path, rate: float, minutes: float, seed: int) -> None:
        self.root, self.rate, self.minutes = root, rate, minutes
        self.rng = random.Random(seed)
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith(("CSC_", *(i.env_prefix for i in SERVICES.values()))):
                del self.env[k]
        self.ports = {
            "CSC_DEV_PG_PORT": free_port(), "CSC_DEV_BROKER_PORT": free_port(),
            "CSC_DEV_SMTP_PORT": free_port(), "CSC_DEV_MAIL_WEB_PORT": free_port(),
            **{f"{i.env_prefix}PORT": free_port() for i in SERVICES.values()},
        }
        self.env.update({k: str(v) for k, v in self.ports.items()})
        self.stack: subprocess.Popen[str] | None = None
        self.written = Counter[str]()
        self.retried = 0
        self.answers = Counter[str]()  # why a try did not land: status, or no answer
        self.faults: list[str] = []

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[SERVICES[service].env_prefix + 'PORT']}"

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports['CSC_DEV_PG_PORT']}/{database}"

    # -- the stack ---------------------------------------------------------------

    def start(self) -> None:
        self.stack = subprocess.Popen(
            [CSC, "dev", "--root", str(self.root)], env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        assert self.stack.stdout is not None
        for line in self.stack.stdout:
            if "Press Ctrl-C to stop." in line:
                return
        raise SystemExit("the stack did not start (see its output above)")

    def stop(self) -> None:
        if self.stack and self.stack.poll() is None:
            self.stack.send_signal(signal.SIGINT)
            try:
                self.stack.wait(60)
            except subprocess.TimeoutExpired:
                self.stack.kill()

    def csc(self, *args: str, stdin: str = "") -> str:
        env = {**self.env, "CSC_DEV_ENV": str(self.root / "dev.env")}
        done = subprocess.run([CSC, *args], input=stdin, env=env, capture_output=True,
                              text=True, timeout=120)
        if done.returncode != 0:
            raise SystemExit(f"csc {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    # -- writes ------------------------------------------------------------------

    async def staff_tokens(self, client: httpx.AsyncClient) -> tuple[str, str]:
        self.csc("identity", "create-staff", "--username", "soak.admin", "--role", "admin",
                 "--first-name", "Soak", "--last-name", "Admin", "--password-stdin",
                 stdin=PASSWORD + "\n")
        self.csc("identity", "create-staff", "--username", "soak.worker", "--role",
                 "reentry", "--first-name", "Soak", "--last-name", "Worker",
                 "--password-stdin", stdin=PASSWORD + "\n")
        tokens = []
        for who in ("soak.admin", "soak.worker"):
            r = await client.post(f"{self.url('identity')}/v1/auth/token",
                                  data={"username": who, "password": PASSWORD})
            r.raise_for_status()
            tokens.append(r.json()["access_token"])
        admin, worker = tokens
        me = await client.get(f"{self.url('identity')}/v1/me",
                              headers={"Authorization": f"Bearer {worker}"})
        r = await client.put(
            f"{self.url('enrollment')}/v1/programs/returning-citizens/staff/{me.json()['id']}",
            headers={"Authorization": f"Bearer {admin}"})
        r.raise_for_status()
        return admin, worker

    async def write(self, client: httpx.AsyncClient, token: str, i: int) -> None:
        """One write, retried with its Idempotency-Key until it lands (or 2 minutes)."""
        p = person(self.rng)
        key = f"soak-{uuid.uuid4()}"
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
        if i % 2 == 0:
            kind, url = "identity", f"{self.url('identity')}/v1/customers"
            body = {"first_name": p["first_name"], "last_name": p["last_name"],
                    "date_of_birth": p["date_of_birth"]}
        else:
            kind, url = "enrollment", f"{self.url('enrollment')}/v1/returning-citizens"
            idoc = f"S{i:05d}"[-6:]
            body = {"parent_institution": "kewanee-lsrc", "idoc_number": idoc,
                    "idoc_number_confirmation": idoc, "first_name": p["first_name"],
                    "last_name": p["last_name"], "date_of_birth": p["date_of_birth"],
                    "counties_of_commitment": ["cook"], "msr_date": "2027-01-15",
                    "enrollment_date": "2026-11-30"}
        deadline = time.monotonic() + 120
        rejected: list[str] = []
        while time.monotonic() < deadline:
            try:
                r = await client.post(url, json={**body, "rejected_account_ids": rejected},
                                      headers=headers, timeout=10)
            except httpx.HTTPError:
                r = None
            if r is not None and r.status_code in (200, 201):
                self.written[kind] += 1
                return
            if r is not None and r.status_code == 409 and "candidates" in r.json():
                # a namesake from the generator: another person, as staff would say
                rejected = [c["account_id"] for c in r.json()["candidates"]]
                continue
            self.retried += 1
            self.answers[str(r.status_code) if r is not None else "no answer"] += 1
            await asyncio.sleep(0.5)
        self.written["gave_up"] += 1

    async def load(self, client: httpx.AsyncClient, token: str, until: float) -> None:
        tasks: set[asyncio.Task[None]] = set()
        i = 0
        start = time.monotonic()
        while time.monotonic() < until:
            tasks.add(asyncio.create_task(self.write(client, token, i)))
            i += 1
            await asyncio.sleep(max(0.0, start + i / self.rate - time.monotonic()))
        await asyncio.gather(*tasks)

    # -- faults ------------------------------------------------------------------

    def pids(self, pattern: str) -> list[int]:
        out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    async def fault(self) -> None:
        kind = self.rng.choice(["cut", "restart", "kill-identity", "kill-enrollment", "pg"])
        broker = f"127.0.0.1:{self.ports['CSC_DEV_BROKER_PORT']}"
        self.faults.append(kind)
        print(f"  fault at {time.strftime('%H:%M:%S')}: {kind}", flush=True)
        if kind == "cut":
            for pid in self.pids(f"tansu.*{broker}"):
                os.kill(pid, signal.SIGSTOP)
            await asyncio.sleep(10)
            for pid in self.pids(f"tansu.*{broker}"):
                os.kill(pid, signal.SIGCONT)
        elif kind == "restart":
            for pid in self.pids(f"tansu.*{broker}"):
                os.kill(pid, signal.SIGKILL)
        elif kind.startswith("kill-"):
            name = kind.removeprefix("kill-")
            port = self.ports[SERVICES[name].env_prefix + "PORT"]
            for pid in self.pids(f"{name}.app:create_app.*--port {port}"):
                os.kill(pid, signal.SIGKILL)
        else:
            conn = await asyncpg.connect(self.dsn("postgres"))
            try:
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname IN ('identity', 'enrollment') AND pid <> pg_backend_pid()")
            finally:
                await conn.close()

    async def faults_until(self, until: float) -> None:
        while True:
            await asyncio.sleep(self.rng.uniform(15, 40))
            if time.monotonic() > until - 15:
                return
            await self.fault()

    # -- the count ---------------------------------------------------------------

    async def count(self, settle: float) -> dict[str, int]:
        """Events written to each producer's outbox against what its consumer applied."""
        deadline = time.monotonic() + settle
        while True:
            result = await self._count_once()
            if (result["lost"] == 0 and result["effects_missing"] == 0) \
                    or time.monotonic() > deadline:
                return result
            await asyncio.sleep(1)

    async def _count_once(self) -> dict[str, int]:
        lost = duplicated = applied = missing = 0
        conns = {d: await asyncpg.connect(self.dsn(d)) for d in ("identity", "enrollment")}
        try:
            for consumer, (producer, types) in CONSUMED.items():
                sent = {r["event_id"] for r in await conns[producer].fetch(
                    "SELECT event_id FROM outbox WHERE event_type = ANY($1::text[])",
                    list(types))}
                rows = await conns[consumer].fetch(
                    "SELECT event_id, count(*) AS n FROM inbox WHERE consumer = $1"
                    " GROUP BY event_id", consumer)
                got = {r["event_id"]: r["n"] for r in rows}
                lost += len(sent - set(got))
                duplicated += sum(n - 1 for n in got.values() if n > 1)
                applied += len(sent & set(got))
            # the effects themselves
            accounts = {r["id"] for r in await conns["identity"].fetch(
                "SELECT id FROM customers")}
            known = {r["id"] for r in await conns["enrollment"].fetch(
                "SELECT id FROM customers")}
            missing += len(accounts - known)
            idocs = {r["idoc_number"] for r in await conns["enrollment"].fetch(
                "SELECT idoc_number FROM returning_citizens")}
            held = {r["value"] for r in await conns["identity"].fetch(
                "SELECT value FROM customer_identifiers WHERE kind = 'idoc_number'")}
            missing += len(idocs - held)
        finally:
            for c in conns.values():
                await c.close()
        return {"lost": lost, "duplicated": duplicated, "applied": applied,
                "effects_missing": missing}

    async def run(self) -> int:
        async with httpx.AsyncClient(timeout=10) as client:
            _, worker = await self.staff_tokens(client)
            until = time.monotonic() + self.minutes * 60
            print(f"writing {self.rate}/s for {self.minutes} min with faults...", flush=True)
            started = time.monotonic()
            await asyncio.gather(self.load(client, worker, until), self.faults_until(until))
            took = time.monotonic() - started
        print("waiting for the consumers...", flush=True)
        result = await self.count(settle=180)
        total = self.written["identity"] + self.written["enrollment"]
        print(f"writes: {total} landed in {took:.0f} s ({total / took:.1f}/s; "
              f"identity {self.written['identity']}, enrollment {self.written['enrollment']}, "
              f"gave up {self.written['gave_up']}, retried {self.retried})")
        print(f"tries that did not land: {dict(self.answers.most_common())}")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} (1 min) on "
              f"{os.cpu_count()} cores")
        print(f"faults: {len(self.faults)} ({', '.join(self.faults) or 'none'})")
        print(f"events applied: {result['applied']}; lost {result['lost']}, "
              f"duplicated {result['duplicated']}, effects missing {result['effects_missing']}")
        bad = result["lost"] + result["duplicated"] + result["effects_missing"]
        return 0 if bad == 0 and self.written["gave_up"] == 0 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=20.0, help="writes a second")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="csc-soak-") as tmp:
        soak = Soak(Path(tmp) / "local", args.rate, args.minutes, args.seed)
        soak.start()
        try:
            code = asyncio.run(soak.run())
        finally:
            soak.stop()
    sys.exit(code)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
