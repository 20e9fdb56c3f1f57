"""Benchmark: the staff console through the gateway, and the gateway's own overhead.

Starts its own PostgreSQL and broker on free ports and runs identity, enrollment,
groups, readiness and the gateway (one uvicorn worker each, separate processes).
Makes N case workers (default 50) authorized for Returning Citizens, a few hundred
enrolled customers, and for each case worker a personal group with members. Then a
morning at the office, in three parts:

1. Sign-in, spread over ``--signin-over`` seconds (default 60), as staff arrive: the
   sign-in page and the sign-in itself. Sign-in is timed on its own: it verifies an
   argon2 password hash, about 140 ms of CPU by design (the cost that makes a stolen
   hash slow to guess), so 50 sign-ins in the same instant queue on the two cores
   for seconds; a real morning spreads them over minutes.
2. Every case worker at once walks the pages, signed in: My groups, their group's
   page, the Returning Citizens list, a customer page, the Add Customer form and its
   match step, ``--rounds`` times. Between pages each waits a think time (``--think``,
   default 2 s: uniform 0.5x to 1.5x), as a person reads the page and fills in the
   form, and each starts within one think time of the others (not all in the same
   millisecond). The walks are then run again with no think time at all, all starting
   at once (every worker firing its next page as soon as the last answered: far more
   load than 50 people make). p50/p95 per page.
3. The gateway's overhead: the same API call (``GET /v1/returning-citizens?limit=25``)
   straight to enrollment and through ``/api/enrollment/...``, interleaved, by 1, 10
   and N clients at once (``--clients``); p50 and p95 of both, their difference, and
   the gateway's CPU per forwarded call (its idle rate taken off).

    .venv/bin/python bench/console.py [--staff 50] [--rounds 2] [--think 2]
        [--signin-over 60] [--clients 1,10,50] [--profile /tmp/gateway.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._support import (
    CSC,
    PASSWORD,
    LeanClient,
    b64_key,
    bench_stack,
    identity_env,
    pct,
    person,
    wait_ready,
)
from bench.add_customer import authorize, intake_form, setup_staff, sql
from shared.devstack.processes import free_port

# the gateway under cProfile; uvicorn re-raises SIGTERM after its shutdown, so the
# handler in place then ends the process through `finally`, which writes the stats
PROFILED = """
import cProfile, signal, time, uvicorn
def stop(*_):
    raise SystemExit(0)
signal.signal(signal.SIGTERM, stop)
profile = cProfile.Profile(time.process_time)  # CPU time: waiting is not the gateway's cost
profile.enable()
try:
    uvicorn.run("gateway.app:create_app", factory=True, port={port}, access_log=False,
                log_level="warning")
finally:
    profile.disable()
    profile.dump_stats({out!r})
"""
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGES = ("My groups", "group page", "Returning Citizens list", "customer page",
         "Add Customer form", "Add Customer match step")


def cookie_of(r: httpx.Response, name: str) -> str:
    """The cookie's value from Set-Cookie (Secure cookies: httpx keeps them for https)."""
    for header in r.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError(f"no {name} cookie")


@dataclass
class Worker:
    username: str
    group_id: str
    cookie: dict[str, str] = field(default_factory=dict)


ERRORS: dict[str, list[str]] = defaultdict(list)  # page -> what went wrong, in order
ERROR_TEXT = re.compile(r'<p class="usa-alert__text">\s*(.*?)\s*</p>', re.S)


async def timed(client: httpx.AsyncClient, times: dict[str, list[float]], name: str,
                method: str, path: str, **kw: Any) -> httpx.Response:
    """The page, timed; a failed one (not 200 or 303) is timed too and counted apart."""
    t = time.perf_counter()
    r = await client.request(method, path, **kw)
    times[name].append((time.perf_counter() - t) * 1000)
    if r.status_code not in (200, 303):
        said = ERROR_TEXT.search(r.text)
        ERRORS[name].append(f"{r.status_code} {said.group(1) if said else r.text[:120]!r}")
    return r


async def sign_in(client: httpx.AsyncClient, w: Worker, times: dict[str, list[float]],
                  delay: float) -> None:
    await asyncio.sleep(delay)
    page = await timed(client, times, "sign-in page", "GET", "/signin")
    anon = {"cookie": f"csc_csrf={cookie_of(page, 'csc_csrf')}"}
    token = CSRF.search(page.text)
    assert token
    r = await timed(client, times, "sign in (POST)", "POST", "/signin", headers=anon, data={
        "csrf_token": token.group(1), "username": w.username, "password": PASSWORD})
    assert r.headers["location"] == "/console", r.text[:300]
    w.cookie = {"cookie": f"csc_session={cookie_of(r, 'csc_session')}"}


async def walk(client: httpx.AsyncClient, w: Worker, enrollment_id: str,
               form: dict[str, Any], times: dict[str, list[float]], think: float,
               rng: random.Random) -> None:
    async def pause() -> None:
        if think:
            await asyncio.sleep(think * rng.uniform(0.5, 1.5))

    me = w.cookie
    await timed(client, times, "My groups", "GET", "/console", headers=me)
    await pause()
    group = await timed(client, times, "group page", "GET", f"/console/groups/{w.group_id}",
                        headers=me)
    assert group.status_code != 200 or "Members and subgroups" in group.text, group.text[:500]
    await pause()
    await timed(client, times, "Returning Citizens list", "GET",
                "/console/returning-citizens", headers=me)
    await pause()
    await timed(client, times, "customer page", "GET", f"/console/customers/{enrollment_id}",
                headers=me)
    await pause()
    add = await timed(client, times, "Add Customer form", "GET",
                      "/console/returning-citizens/new", headers=me)
    csrf = CSRF.search(add.text)
    if csrf is None:
        return  # counted as an error: no form to fill in
    fields: list[tuple[str, str]] = [("csrf_token", csrf.group(1))]
    for k, v in form.items():
        fields += [(k, x) for x in v] if isinstance(v, list) else [(k, str(v))]
    await pause()  # filling in the form
    match = await timed(client, times, "Add Customer match step", "POST",
                        "/console/returning-citizens/new", content=urlencode(fields),
                        headers={**me, "content-type": "application/x-www-form-urlencoded"})
    assert match.status_code != 200 or "Is this the person?" in match.text, match.text[:500]


def client_for(url: str, n: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=120,
                             limits=httpx.Limits(max_connections=n + 2))


async def morning(url: str, workers: list[Worker], enrollment_ids: list[str],
                  forms: list[dict[str, Any]], rounds: int, think: float, signin_over: float,
                  seed: int, cpu: Callable[[], Cpu]
                  ) -> tuple[dict[str, list[float]], dict[str, list[float]],
                             dict[str, list[float]], float, list[str],
                             list[dict[str, list[str]]]]:
    """Sign-ins spread over ``signin_over`` s; then the walks with and without think
    time. Returns the sign-in times, the walks' times each way, and the sign-ins' span."""
    rng = random.Random(seed)
    signins: dict[str, list[float]] = defaultdict(list)
    async with client_for(url, len(workers)) as client:
        # a gateway that has served someone: its templates compiled, identity's keys
        # fetched (once per process, not per sign-in)
        warm = Worker(workers[0].username, workers[0].group_id)
        await sign_in(client, warm, defaultdict(list), 0)
        await walk(client, warm, enrollment_ids[0], forms[0], defaultdict(list), 0, rng)
        for name, said in taken_errors().items():
            print(f"  (warm-up) FAILED {name}: {said[0]}")
        began = time.perf_counter()
        used = cpu()
        await asyncio.gather(*(sign_in(client, w, signins, rng.uniform(0, signin_over))
                               for w in workers))
        span = time.perf_counter() - began
        cpu_lines = [used.per(len(workers))]
        errors = [taken_errors()]
        results = []

        async def worker(i: int, w: Worker, pause: float, times: dict[str, list[float]]
                         ) -> None:
            own = random.Random(seed + i)
            # with think time each starts somewhere within one pause, as people do,
            # rather than 50 in the same millisecond; then walk after walk
            await asyncio.sleep(own.uniform(0, pause))
            for r in range(rounds):
                if r:
                    await asyncio.sleep(pause * own.uniform(0.5, 1.5))
                await walk(client, w, enrollment_ids[(i + r) % len(enrollment_ids)],
                           forms[(i + r * len(workers)) % len(forms)], times, pause, own)

        for pause in (think, 0.0):
            times: dict[str, list[float]] = defaultdict(list)
            used = cpu()
            await asyncio.gather(*(worker(i, w, pause, times) for i, w in enumerate(workers)))
            cpu_lines.append(used.per(sum(len(v) for v in times.values())))
            errors.append(taken_errors())
            results.append(times)
            if not think:
                results.append(times)
                cpu_lines.append(cpu_lines[-1])
                errors.append(errors[-1])
                break
    return signins, results[0], results[1], span, cpu_lines, errors


async def overhead(direct_port: int, gateway_port: int, tokens: list[dict[str, str]],
                   calls: int) -> tuple[list[float], list[float]]:
    direct: list[float] = []
    through: list[float] = []

    async def one(headers: dict[str, str]) -> None:
        a, b = LeanClient("127.0.0.1", direct_port), LeanClient("127.0.0.1", gateway_port)
        req_a = LeanClient.encode("GET", "/v1/returning-citizens?limit=25", b"", headers)
        req_b = LeanClient.encode("GET", "/api/enrollment/v1/returning-citizens?limit=25",
                                  b"", headers)
        try:
            for k in range(calls + 2):
                for client, req, out in ((a, req_a, direct), (b, req_b, through))[::(
                        1 if k % 2 else -1)]:
                    t = time.perf_counter()
                    try:
                        status, _ = await client.send(req)
                    except (asyncio.IncompleteReadError, ConnectionError):
                        # the server closed a connection idle past its keep-alive while
                        # the other call waited: reconnect, and leave this one untimed
                        await client.close()
                        status, _ = await client.send(req)
                        t = -1.0
                    took = (time.perf_counter() - t) * 1000
                    assert status == 200, status
                    if k >= 2 and t >= 0:  # the first two open connections
                        out.append(took)
        finally:
            await a.close()
            await b.close()

    await asyncio.gather(*(one(h) for h in tokens))
    return direct, through


async def enroll_some(enrollment: str, tokens: list[dict[str, str]], n: int,
                      rng: random.Random
                      ) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """N Returning Citizens enrolled (each with a new account); their enrollment and
    account ids, and as many forms for people not yet enrolled (the match step's)."""
    ids: list[str] = []
    accounts: list[str] = []
    forms = [intake_form(rng, i, person(rng)) for i in range(n * 2)]
    async with httpx.AsyncClient(base_url=enrollment, timeout=60) as c:
        for i, form in enumerate(forms[:n]):
            headers = {**tokens[i % len(tokens)],
                       "Idempotency-Key": f"bench-{i}-{form['idoc_number']}"}
            r = await c.post("/v1/returning-citizens", json={**form, "rejected_account_ids": []},
                             headers=headers)
            if r.status_code == 409:  # a candidate: not this person
                cands = (await c.post("/v1/returning-citizens/matches", json=form,
                                      headers=tokens[0])).json()["candidates"]
                r = await c.post("/v1/returning-citizens", json={
                    **form, "rejected_account_ids": [x["account_id"] for x in cands]},
                    headers={**headers, "Idempotency-Key": headers["Idempotency-Key"] + "-r"})
            assert r.status_code == 201, r.text
            ids.append(r.json()["enrollment_id"])
            accounts.append(r.json()["account_id"])
    return ids, accounts, forms[n:]


async def personal_groups(groups: str, groups_dsn: str, tokens: list[dict[str, str]],
                          accounts: list[str], members: int, rng: random.Random) -> list[str]:
    """A personal group per case worker (made by them, over groups' API), with
    ``members`` of the enrolled customers in it (written straight into groups' table, as
    staff adding them by hand would leave it), once groups knows every customer."""
    import asyncpg

    group_ids: list[str] = []
    async with httpx.AsyncClient(base_url=groups, timeout=30) as c:
        for i, me in enumerate(tokens):
            for _ in range(300):
                r = await c.post("/v1/groups", json={"name": f"Caseload {i}"}, headers=me)
                if r.status_code == 201:
                    break
                await asyncio.sleep(0.1)  # groups has not heard of this staff member yet
            else:
                raise SystemExit(f"could not make a personal group: {r.text}")
            group_ids.append(r.json()["id"])
    conn = await asyncpg.connect(groups_dsn)
    try:
        for _ in range(600):
            known = await conn.fetchval("SELECT count(*) FROM customers WHERE id = ANY($1)",
                                        [uuid.UUID(a) for a in accounts])
            if known == len(accounts):
                break
            await asyncio.sleep(0.1)
        else:
            raise SystemExit("groups never heard of every customer")
        await conn.copy_records_to_table(
            "memberships", columns=("group_id", "customer_id", "source"),
            records=[(uuid.UUID(g), uuid.UUID(a), "staff") for g in group_ids
                     for a in rng.sample(accounts, min(members, len(accounts)))])
    finally:
        await conn.close()
    return group_ids


def _stat(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu(data_dir: Path) -> float:
    """CPU of PostgreSQL so far: the postmaster, its children now, and those ended."""
    found = next(data_dir.rglob("postmaster.pid"), None)
    if found is None:
        return 0.0
    master = int(found.read_text().split()[0])
    fields = _stat(master)
    ticks = sum(int(f) for f in fields[11:15])
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                child = _stat(entry.name)
            except OSError:
                continue
            if int(child[1]) == master:
                ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class Cpu:
    """CPU used by each service process and PostgreSQL between two moments, less what
    each spends idle (consumer polls, outbox relays, broker watches) in that time."""

    def __init__(self, pids: dict[str, int], pg_dir: Path,
                 idle: dict[str, float] | None = None) -> None:
        self.pids, self.pg_dir, self.idle = pids, pg_dir, idle or {}
        self.start = self.read()
        self.began = time.monotonic()

    def idle_rates(self, seconds: float) -> dict[str, float]:
        """CPU seconds per second each uses doing nothing, measured over ``seconds``."""
        start = self.read()
        time.sleep(seconds)
        end = self.read()
        return {k: (end[k] - start[k]) / seconds for k in end}

    def read(self) -> dict[str, float]:
        now = {n: cpu_seconds(p) for n, p in self.pids.items()}
        now["PostgreSQL"] = postgres_cpu(self.pg_dir)
        return now

    def per(self, n: int) -> str:
        """ms of CPU per one of ``n`` things done since the start, by process."""
        end = self.read()
        took = time.monotonic() - self.began
        used = {k: max(0.0, end[k] - self.start[k] - self.idle.get(k, 0.0) * took) * 1000
                / max(n, 1) for k in end}
        return ", ".join(f"{k} {v:.1f}" for k, v in used.items()) + (
            f"; all {sum(used.values()):.1f} ms")


def line(label: str, lat: list[float]) -> str:
    return (f"  {label:<26} p50 {pct(lat, 0.5):6.1f} ms  p95 {pct(lat, 0.95):6.1f} ms"
            f"  ({len(lat)})")


def print_pages(title: str, times: dict[str, list[float]], errors: dict[str, list[str]]
                ) -> None:
    print(title)
    for name in PAGES:
        print(line(name, times[name]))
    every = [t for name in PAGES for t in times[name]]
    print(line("every page", every))
    print_errors(errors)


def taken_errors() -> dict[str, list[str]]:
    """The pages that failed since last asked."""
    taken = dict(ERRORS)
    ERRORS.clear()
    return taken


def print_errors(errors: dict[str, list[str]]) -> None:
    """Failed pages (their times are in the figures above)."""
    for name, said in errors.items():
        print(f"  FAILED {name}: {len(said)}, e.g. {said[0]}")


def measure_overhead(ports: dict[str, int], pids: dict[str, int],
                     tokens: list[dict[str, str]], levels: list[int], total: int) -> None:
    # what each process spends doing nothing (its consumer and outbox loops), to take
    # off the CPU measured under the calls
    idle_from = {n: cpu_seconds(pids[n]) for n in ("gateway", "enrollment")}
    time.sleep(10)
    idle = {n: (cpu_seconds(pids[n]) - idle_from[n]) / 10 for n in idle_from}
    print(f"gateway overhead, GET /v1/returning-citizens?limit=25 (idle CPU: gateway"
          f" {idle['gateway'] * 1000:.0f} ms/s, enrollment {idle['enrollment'] * 1000:.0f}"
          " ms/s, taken off):")
    print("  clients | direct p50 / p95 | gateway p50 / p95 | overhead p50 / p95"
          " | gateway CPU/call | enrollment CPU/call")
    for n in levels:
        calls = max(20, total // n)
        cpu_before = {k: cpu_seconds(pids[k]) for k in idle}
        began = time.monotonic()
        direct, through = asyncio.run(overhead(ports["enrollment"], ports["gateway"],
                                               tokens[:n], calls))
        took = time.monotonic() - began
        cpu = {k: cpu_seconds(pids[k]) - cpu_before[k] - idle[k] * took for k in idle}
        # CPU time does not grow with the machine's load as waiting does: what each
        # process spent per call (enrollment answered both kinds; the gateway one)
        n_calls = (calls + 2) * n
        d50, d95, g50, g95 = (pct(direct, 0.5), pct(direct, 0.95), pct(through, 0.5),
                              pct(through, 0.95))
        print(f"  {n:7d} | {d50:6.1f} / {d95:6.1f} ms | {g50:6.1f} / {g95:6.1f} ms "
              f"| {g50 - d50:+6.1f} / {g95 - d95:+6.1f} ms"
              f" | {cpu['gateway'] * 1000 / n_calls:6.2f} ms"
              f" | {cpu['enrollment'] * 1000 / (2 * n_calls):6.2f} ms"
              f"   ({len(direct)} calls each way)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--staff", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="walks per case worker")
    parser.add_argument("--think", type=float, default=2.0,
                        help="mean seconds between pages (uniform 0.5x-1.5x); 0: none")
    parser.add_argument("--signin-over", type=float, default=60.0,
                        help="seconds over which the case workers sign in")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--members", type=int, default=30, help="per personal group")
    parser.add_argument("--clients", default="",
                        help="overhead: clients at once, comma-separated (default 1,10,staff)")
    parser.add_argument("--api-calls", type=int, default=1000,
                        help="overhead: calls each way per level, shared by its clients")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--profile", metavar="FILE", default="",
                        help="run the gateway under cProfile, its stats written to FILE "
                             "when it stops (read with: python -m pstats FILE)")
    args = parser.parse_args()
    levels = sorted({int(c) for c in (args.clients or f"1,10,{args.staff}").split(",")
                     if 0 < int(c) <= args.staff})
    rng = random.Random(args.seed)
    with bench_stack() as stack:
        pg = stack.pg
        names = ("identity", "enrollment", "groups", "readiness", "gateway")
        dsns = {n: pg.dsn(n) for n in names}
        ports = {n: free_port() for n in names}
        urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
        env = identity_env(
            dsns["identity"], stack.broker.bootstrap, CSC_KAFKA_CONSUMER_MODE="assign",
            ENROLLMENT_DATABASE_URL=dsns["enrollment"], GATEWAY_DATABASE_URL=dsns["gateway"],
            GROUPS_DATABASE_URL=dsns["groups"], READINESS_DATABASE_URL=dsns["readiness"],
            GATEWAY_DATA_KEY=b64_key(), GATEWAY_AUTH_RATE_PER_MINUTE="100000",
            GATEWAY_IDENTITY_URL=urls["identity"], GATEWAY_ENROLLMENT_URL=urls["enrollment"],
            GATEWAY_GROUPS_URL=urls["groups"], GATEWAY_READINESS_URL=urls["readiness"],
            CSC_GROUPS_URL=urls["groups"], READINESS_GROUPS_URL=urls["groups"],
            CSC_JWKS_URL=f"{urls['identity']}/.well-known/jwks.json",
            ENROLLMENT_IDENTITY_URL=urls["identity"])
        os.environ.update(env)
        asyncio.run(sql(pg.dsn(), *(f"CREATE DATABASE {n}" for n in dsns)))
        subprocess.run([CSC, "migrate", *dsns], env=env, check=True, capture_output=True)
        asyncio.run(setup_staff(dsns["identity"], args.staff))
        pids: dict[str, int] = {}
        for name in names:
            if name == "gateway" and args.profile:
                proc = subprocess.Popen([sys.executable, "-c", PROFILED.format(
                    port=ports[name], out=args.profile)], env=env)
                stack.procs.append(proc)
            else:
                proc = stack.start(name, ports[name], env)
            asyncio.run(wait_ready(urls[name], proc, name))
            pids[name] = proc.pid
        tokens = asyncio.run(authorize(urls["identity"], urls["enrollment"], args.staff))
        ids, accounts, forms = asyncio.run(enroll_some(urls["enrollment"], tokens,
                                                       args.customers, rng))
        group_ids = asyncio.run(personal_groups(urls["groups"], dsns["groups"], tokens,
                                                accounts, args.members, rng))
        workers = [Worker(f"bench.case{i}", g) for i, g in enumerate(group_ids)]
        print(f"{os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f});"
              f" {args.staff} case workers, {args.customers} Returning Citizens customers,"
              f" a personal group of {args.members} each")
        idle = Cpu(pids, pg.data_dir).idle_rates(10)
        print("idle CPU, ms/s (taken off below): " + ", ".join(
            f"{k} {v * 1000:.0f}" for k, v in idle.items()))
        signins, thinking, flat, span, cpu_lines, errors = asyncio.run(morning(
            urls["gateway"], workers, ids, forms, args.rounds, args.think, args.signin_over,
            args.seed, lambda: Cpu(pids, pg.data_dir, idle)))
        print(f"sign-in, {args.staff} case workers arriving over {span:.0f} s"
              " (an argon2 hash each, by design):")
        for name in ("sign-in page", "sign in (POST)"):
            print(line(name, signins[name]))
        print_errors(errors[0])
        print(f"  CPU per sign-in (page and POST), ms: {cpu_lines[0]}")
        if args.think:
            print_pages(f"{args.staff} case workers at once, {args.rounds} walks each, think"
                        f" time {args.think:g} s (0.5x-1.5x) between pages:", thinking,
                        errors[1])
            print(f"  CPU per page, ms: {cpu_lines[1]}")
        print_pages(f"{args.staff} case workers at once, {args.rounds} walks each, no think"
                    " time:", flat, errors[2])
        print(f"  CPU per page, ms: {cpu_lines[2]}")
        measure_overhead(ports, pids, tokens, levels, args.api_calls)


if __name__ == "__main__":
    main()
