"""The service stack under faults: identity and enrollment each run by uvicorn in its own
process (as in production, so either can be SIGKILLed), each on a fresh database, on a
broker of the test's own that they reach only through a TCP proxy (so the link can be
cut, and the broker restarted empty, without touching the session's broker).

Staff are made by identity's own use case (as `csc identity create-staff` makes them);
writes go over HTTP with an Idempotency-Key and are retried until they land, as a client
would. The checker counts effects from the databases: every event a producer wrote to
its outbox against what its consumer applied (lost, applied out of order for its
subject), writes applied twice (accounts beyond the writes, an IDOC number held twice),
effects missing (an account enrollment never heard of, an enrollment whose IDOC number
identity never recorded), and dead letters.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from identity.deps import Deps
from identity.service.accounts import create_staff
from identity.settings import IdentitySettings
from shared.devstack.processes import LocalBroker, free_port
from shared.servicekit.db import create_pool
from tests.integration.enrollment.conftest import STAFF_PASSWORD, drop_database, fresh_database
from tests.support.kit import wait_until
from tests.support.stack import Servers
from tests.support.tcpproxy import TcpProxy

CSC = str(Path(sys.executable).parent / "csc")
SERVICES = ("identity", "enrollment")
# consumer -> (producer, the producer's event types it applies)
CONSUMED = {
    "enrollment": ("identity", ("CustomerAccountCreated", "CustomerAccountUpdated",
                                "StaffAccountCreated")),
    "identity": ("enrollment", ("CustomerEnrolled",)),
}
FIRST = ("Avery", "Blake", "Carmen", "Dana", "Elliot", "Farrah", "Gideon", "Harper",
         "Imani", "Jonah", "Keisha", "Lionel", "Marisol", "Nadia", "Oren", "Priya")
LAST = ("Abernathy", "Brightwater", "Castellanos", "Drummond", "Eastwood", "Fairbanks",
        "Greenleaf", "Holloway", "Ingersoll", "Jablonski", "Kowalczyk", "Lindqvist",
        "Montgomery", "Nakamura", "Okonkwo", "Pemberton", "Quintero", "Rasmussen")


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@dataclass
class Check:
    lost: int
    reordered: int
    applied: int
    duplicated: int
    missing: int
    dead_letters: int
    accounts: int

    @property
    def clean(self) -> bool:
        return (self.lost, self.reordered, self.duplicated, self.missing,
                self.dead_letters) == (0, 0, 0, 0, 0)


@dataclass
class FaultStack:
    servers: Servers
    broker: LocalBroker
    proxy: TcpProxy
    env: dict[str, str]
    dsn: dict[str, str]
    port: dict[str, int]
    logs: dict[str, Any]  # each service's output, kept for a failing test's report
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    worker: dict[str, str] = field(default_factory=dict)  # headers of a reentry worker
    written: Counter[str] = field(default_factory=Counter)
    retried: int = 0
    _n: int = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port[name]}"

    # -- processes -------------------------------------------------------------

    async def start(self, name: str) -> None:
        """Start a service process and wait until it answers /readyz."""
        self.procs[name] = proc = subprocess.Popen(  # noqa: ASYNC220 (it only spawns)
            [sys.executable, "-m", "uvicorn", f"{name}.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(self.port[name]), "--no-access-log"],
            env=self.env, stdout=self.logs[name], stderr=subprocess.STDOUT)
        async with httpx.AsyncClient(timeout=2) as c:
            async def ready() -> bool:
                assert proc.poll() is None, f"{name} exited with {proc.returncode}"
                try:
                    return (await c.get(f"{self.url(name)}/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False
            await wait_until(ready, timeout=60, interval=0.1)

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown, no flush, whatever it was doing."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)

    def csc(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([CSC, *args], input=stdin, env=self.env, capture_output=True,
                              text=True, timeout=120)

    # -- staff -------------------------------------------------------------------

    async def sign_in_worker(self) -> None:
        """An admin and a reentry worker (made as `csc identity create-staff` makes them),
        the worker authorized for Returning Citizens once enrollment has heard of them."""
        settings = IdentitySettings(database_url=self.dsn["identity"])
        pool = await create_pool(self.dsn["identity"], min_size=1, max_size=2)
        try:
            for user, role in (("admin1", "admin"), ("rcase", "reentry")):
                await create_staff(pool, Deps.from_settings(settings), username=user,
                                   first_name="Robin", last_name="Case", email=None,
                                   roles=[role], password=STAFF_PASSWORD)
        finally:
            await pool.close()
        async with httpx.AsyncClient(base_url=self.url("identity"), timeout=30) as c:
            tokens = []
            for user in ("admin1", "rcase"):
                r = await c.post("/v1/auth/token",
                                 data={"username": user, "password": STAFF_PASSWORD})
                assert r.status_code == 200, r.text
                tokens.append({"Authorization": f"Bearer {r.json()['access_token']}"})
            admin, self.worker = tokens
            staff_id = (await c.get("/v1/me", headers=self.worker)).json()["id"]
        async with httpx.AsyncClient(base_url=self.url("enrollment"), timeout=30) as c:
            async def authorized() -> bool:  # 404 until enrollment knows the staff member
                r = await c.put(f"/v1/programs/returning-citizens/staff/{staff_id}",
                                headers=admin)
                return r.status_code in (200, 201)
            await wait_until(authorized, timeout=30, interval=0.1)

    # -- writes ------------------------------------------------------------------

    def _next(self) -> int:
        self._n += 1
        return self._n

    async def write(self, client: httpx.AsyncClient, kind: str | None = None) -> None:
        """One write (identity's Add Customer or enrollment's, alternating), retried with
        its Idempotency-Key until it lands; fails the test after 90 s."""
        i = self._next()
        kind = kind or ("identity" if i % 2 else "enrollment")
        first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        born = (date(1960, 1, 1) + timedelta(days=37 * i)).isoformat()
        person = {"first_name": first, "last_name": last, "date_of_birth": born}
        headers = {**self.worker, "Idempotency-Key": f"fault-{uuid.uuid4()}"}
        if kind == "identity":
            url, body = f"{self.url('identity')}/v1/customers", dict[str, object](person)
        else:
            idoc = f"F{i:05d}"
            url = f"{self.url('enrollment')}/v1/returning-citizens"
            body = {**person, "parent_institution": "kewanee-lsrc", "idoc_number": idoc,
                    "idoc_number_confirmation": idoc, "counties_of_commitment": ["cook"],
                    "msr_date": "2027-01-15", "enrollment_date": "2026-11-30"}
        rejected: list[str] = []
        r: httpx.Response | None = None
        deadline = time.monotonic() + 90
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
                rejected = [c["account_id"] for c in r.json()["candidates"]]  # a namesake
                continue
            self.retried += 1
            await asyncio.sleep(0.2)  # a client's back-off before trying again
        raise AssertionError(f"a write to {kind} never landed (last answer: "
                             f"{r.status_code if r is not None else 'no answer'})")

    async def write_for(self, seconds: float, rate: float = 5.0) -> None:
        """Writes at ``rate`` a second for ``seconds`` (each retried until it lands)."""
        async with httpx.AsyncClient() as client:
            tasks = []
            start = time.monotonic()
            n = 0
            while time.monotonic() - start < seconds:
                tasks.append(asyncio.create_task(self.write(client)))
                n += 1
                await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            await asyncio.gather(*tasks)

    async def write_n(self, n: int, kind: str | None = None) -> None:
        async with httpx.AsyncClient() as client:
            await asyncio.gather(*(self.write(client, kind) for _ in range(n)))

    # -- the checker ---------------------------------------------------------------

    async def check_once(self) -> Check:
        conns = {s: await asyncpg.connect(self.dsn[s]) for s in SERVICES}
        try:
            lost = reordered = applied = 0
            for consumer, (producer, types) in CONSUMED.items():
                sent = await conns[producer].fetch(
                    "SELECT event_id, subject FROM outbox WHERE event_type = ANY($1::text[])"
                    " ORDER BY id", list(types))
                got = await conns[consumer].fetch(
                    'SELECT event_id FROM inbox WHERE consumer = $1'
                    ' ORDER BY applied_at, partition, "offset"', consumer)
                position = {r["event_id"]: n for n, r in enumerate(got)}
                by_subject: dict[str, list[int]] = {}
                for r in sent:
                    if r["event_id"] in position:
                        by_subject.setdefault(r["subject"], []).append(position[r["event_id"]])
                    else:
                        lost += 1
                applied += sum(len(v) for v in by_subject.values())
                # a subject's events applied in the order they were written
                reordered += sum(1 for seq in by_subject.values()
                                 for a, b in itertools.pairwise(seq) if b < a)
            accounts = {r["id"] for r in await conns["identity"].fetch(
                "SELECT id FROM customers")}
            known = {r["id"] for r in await conns["enrollment"].fetch(
                "SELECT id FROM customers")}
            held = [r["value"] for r in await conns["identity"].fetch(
                "SELECT value FROM customer_identifiers WHERE kind = 'idoc_number'")]
            idocs = [r["idoc_number"] for r in await conns["enrollment"].fetch(
                "SELECT idoc_number FROM returning_citizens")]
            writes = self.written["identity"] + self.written["enrollment"]
            duplicated = (max(0, len(accounts) - writes) + len(held) - len(set(held))
                          + len(idocs) - len(set(idocs))
                          + max(0, len(idocs) - self.written["enrollment"]))
            missing = len(accounts - known) + len({i.upper() for i in idocs}
                                                  - {h.upper() for h in held})
            dead = sum([int(await conns[s].fetchval("SELECT count(*) FROM dead_letter"))
                        for s in SERVICES])
            return Check(lost, reordered, applied, duplicated, missing, dead, len(accounts))
        finally:
            for c in conns.values():
                await c.close()

    async def settled(self, timeout: float = 90) -> Check:
        """The count once every written event is applied and every effect is there (or the
        deadline passed: the count then shows what is missing)."""
        last: list[Check] = []

        async def done() -> bool:
            last[:] = [await self.check_once()]
            return last[0].lost == 0 and last[0].missing == 0

        with contextlib.suppress(AssertionError):
            await wait_until(done, timeout=timeout, interval=0.25)
        return last[0] if last else await self.check_once()


@pytest_asyncio.fixture
async def fault_stack(servers: Servers, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
                      ) -> AsyncIterator[FaultStack]:
    names = {s: await fresh_database(servers) for s in SERVICES}
    proxy_port = free_port()
    broker = LocalBroker(free_port(), advertised_port=proxy_port)
    await asyncio.to_thread(broker.start)
    proxy = TcpProxy(proxy_port, broker.port)
    await proxy.start()
    port = {s: free_port() for s in SERVICES}
    env = {**os.environ, "CSC_ENV": "test", "CSC_KAFKA_BOOTSTRAP": f"127.0.0.1:{proxy_port}",
           "CSC_KAFKA_CONSUMER_MODE": "assign", "CSC_BROKER_CHECK_INTERVAL": "0.5",
           "CSC_JWKS_URL": f"http://127.0.0.1:{port['identity']}/.well-known/jwks.json",
           "IDENTITY_DATABASE_URL": servers.pg_dsn(names["identity"]),
           "ENROLLMENT_DATABASE_URL": servers.pg_dsn(names["enrollment"]),
           "IDENTITY_SSN_KEYS": f"k1:{_key()}", "IDENTITY_SSN_ACTIVE_KEY": "k1",
           "IDENTITY_SSN_HMAC_KEY": _key(), "IDENTITY_DATA_KEY": _key(),
           "IDENTITY_OUTBOX_POLL_INTERVAL": "0.2", "ENROLLMENT_OUTBOX_POLL_INTERVAL": "0.2",
           "IDENTITY_CONSUMER_MAX_ATTEMPTS": "3", "ENROLLMENT_CONSUMER_MAX_ATTEMPTS": "3"}
    env.pop("ENROLLMENT_IDENTITY_URL", None)
    for k, v in env.items():  # identity's settings for making staff in this process
        if k.startswith(("CSC_", "IDENTITY_")):
            monkeypatch.setenv(k, v)
    logs = {s: (tmp_path / f"{s}.log").open("ab") for s in SERVICES}
    stack = FaultStack(servers, broker, proxy, env,
                       {s: servers.pg_dsn(n) for s, n in names.items()}, port, logs)
    try:
        await asyncio.gather(stack.start("identity"), stack.start("enrollment"))
        await stack.sign_in_worker()
        yield stack
    finally:
        stack.stop_all()
        for f in logs.values():
            f.close()
        await proxy.stop()
        broker.stop()
        for name in names.values():
            await drop_database(servers, name)
