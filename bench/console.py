"""Benchmark: the staff console through the gateway, and the gateway's own overhead.

Starts its own PostgreSQL and broker on free ports, runs identity, enrollment and the
gateway (one uvicorn worker each, separate processes), makes N case workers (default
50) authorized for Returning Citizens and a few hundred enrolled customers, and then
has every case worker at once walk the pages as a browser would: the sign-in page and
sign-in, the console home (My groups), the Returning Citizens list, a customer page,
the Add Customer form and its match step. It prints p50/p95 per page.

Then the gateway's overhead: the same API call (`GET /v1/returning-citizens?limit=25`)
by the N clients at once, straight to enrollment and through `/api/enrollment/...`,
interleaved; the difference of the two p95s (and p50s) is what the gateway adds.

    .venv/bin/python bench/console.py [--staff 50] [--rounds 3] [--api-calls 40]
        [--profile /tmp/gateway.prof]
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
from collections import defaultdict
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
import cProfile, signal, uvicorn
def stop(*_):
    raise SystemExit(0)
signal.signal(signal.SIGTERM, stop)
profile = cProfile.Profile()
profile.enable()
try:
    uvicorn.run("gateway.app:create_app", factory=True, port={port}, access_log=False,
                log_level="warning")
finally:
    profile.disable()
    profile.dump_stats({out!r})
"""
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def cookie_of(r: httpx.Response, name: str) -> str:
    """The cookie's value from Set-Cookie (Secure cookies: httpx keeps them for https)."""
    for header in r.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError(f"no {name} cookie")


async def walk(client: httpx.AsyncClient, username: str, enrollment_id: str,
               form: dict[str, Any], times: dict[str, list[float]]) -> None:
    async def timed(name: str, method: str, path: str, **kw: Any) -> httpx.Response:
        t = time.perf_counter()
        r = await client.request(method, path, **kw)
        times[name].append((time.perf_counter() - t) * 1000)
        assert r.status_code in (200, 303), (name, r.status_code, r.text[:300])
        return r

    page = await timed("sign-in page", "GET", "/signin")
    anon = {"cookie": f"csc_csrf={cookie_of(page, 'csc_csrf')}"}
    token = CSRF.search(page.text)
    assert token
    r = await timed("sign in (POST)", "POST", "/signin", headers=anon, data={
        "csrf_token": token.group(1), "username": username, "password": PASSWORD})
    assert r.headers["location"] == "/console", r.text[:300]
    me = {"cookie": f"csc_session={cookie_of(r, 'csc_session')}"}
    await timed("My groups", "GET", "/console", headers=me)
    await timed("Returning Citizens list", "GET", "/console/returning-citizens", headers=me)
    await timed("customer page", "GET", f"/console/customers/{enrollment_id}", headers=me)
    add = await timed("Add Customer form", "GET", "/console/returning-citizens/new", headers=me)
    csrf = CSRF.search(add.text)
    assert csrf
    fields: list[tuple[str, str]] = [("csrf_token", csrf.group(1))]
    for k, v in form.items():
        fields += [(k, x) for x in v] if isinstance(v, list) else [(k, str(v))]
    match = await timed("Add Customer match step", "POST", "/console/returning-citizens/new",
                        content=urlencode(fields), headers={
                            **me, "content-type": "application/x-www-form-urlencoded"})
    assert "Is this the person?" in match.text, match.text[:500]


async def pages(url: str, staff: list[str], enrollment_ids: list[str],
                forms: list[dict[str, Any]], rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = defaultdict(list)
    limits = httpx.Limits(max_connections=len(staff) + 2)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await walk(client, staff[0], enrollment_ids[0], forms[0], defaultdict(list))  # warm
        for r in range(rounds):
            await asyncio.gather(*(
                walk(client, s, enrollment_ids[(i + r) % len(enrollment_ids)],
                     forms[(i + r * len(staff)) % len(forms)], times)
                for i, s in enumerate(staff)))
    return times


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
                      rng: random.Random) -> tuple[list[str], list[dict[str, Any]]]:
    ids: list[str] = []
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
    return ids, forms[n:]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def line(label: str, lat: list[float]) -> str:
    return (f"  {label:<26} p50 {pct(lat, 0.5):6.1f} ms  p95 {pct(lat, 0.95):6.1f} ms"
            f"  ({len(lat)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--staff", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="walks per case worker")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--api-calls", type=int, default=40, help="per client and path")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--profile", metavar="FILE", default="",
                        help="run the gateway under cProfile, its stats written to FILE "
                             "when it stops (read with: python -m pstats FILE)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with bench_stack() as stack:
        pg = stack.pg
        dsns = {n: pg.dsn(n) for n in ("identity", "enrollment", "gateway")}
        ports = {n: free_port() for n in dsns}
        env = identity_env(
            dsns["identity"], stack.broker.bootstrap, CSC_KAFKA_CONSUMER_MODE="assign",
            ENROLLMENT_DATABASE_URL=dsns["enrollment"], GATEWAY_DATABASE_URL=dsns["gateway"],
            GATEWAY_DATA_KEY=b64_key(), GATEWAY_AUTH_RATE_PER_MINUTE="100000",
            # 50 sign-ins at once queue for identity's argon2 threads longer than the
            # default 15 s on a busy machine: time them instead of answering 503
            GATEWAY_READ_TIMEOUT_SECONDS="120",
            GATEWAY_IDENTITY_URL=f"http://127.0.0.1:{ports['identity']}",
            GATEWAY_ENROLLMENT_URL=f"http://127.0.0.1:{ports['enrollment']}",
            CSC_JWKS_URL=f"http://127.0.0.1:{ports['identity']}/.well-known/jwks.json",
            ENROLLMENT_IDENTITY_URL=f"http://127.0.0.1:{ports['identity']}")
        os.environ.update(env)
        asyncio.run(sql(pg.dsn(), *(f"CREATE DATABASE {n}" for n in dsns)))
        subprocess.run([CSC, "migrate", *dsns], env=env, check=True, capture_output=True)
        asyncio.run(setup_staff(dsns["identity"], args.staff))
        urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
        pids: dict[str, int] = {}
        for name in dsns:
            if name == "gateway" and args.profile:
                proc = subprocess.Popen([sys.executable, "-c", PROFILED.format(
                    port=ports[name], out=args.profile)], env=env)
                stack.procs.append(proc)
            else:
                proc = stack.start(name, ports[name], env)
            asyncio.run(wait_ready(urls[name], proc, name))
            pids[name] = proc.pid
        tokens = asyncio.run(authorize(urls["identity"], urls["enrollment"], args.staff))
        ids, forms = asyncio.run(enroll_some(urls["enrollment"], tokens, args.customers, rng))
        staff = [f"bench.case{i}" for i in range(args.staff)]
        print(f"{os.cpu_count()} cores; {args.staff} case workers at once, {args.rounds} walks"
              f" each; {args.customers} Returning Citizens customers")
        times = asyncio.run(pages(urls["gateway"], staff, ids, forms, args.rounds))
        for name, lat in times.items():
            print(line(name, lat))
        # what each process spends doing nothing (its consumer and outbox loops), to
        # take off the CPU measured under the calls
        idle_from = {n: cpu_seconds(pids[n]) for n in ("gateway", "enrollment")}
        time.sleep(10)
        idle = {n: (cpu_seconds(pids[n]) - idle_from[n]) / 10 for n in idle_from}
        cpu_before = {n: cpu_seconds(pids[n]) for n in idle}
        began = time.monotonic()
        direct, through = asyncio.run(overhead(ports["enrollment"], ports["gateway"],
                                               tokens, args.api_calls))
        took = time.monotonic() - began
        cpu = {n: cpu_seconds(pids[n]) - cpu_before[n] - idle[n] * took for n in cpu_before}
        print(f"gateway overhead, GET /v1/returning-citizens?limit=25, {args.staff} clients:")
        print(line("straight to enrollment", direct))
        print(line("through the gateway", through))
        print(f"  overhead: p50 {pct(through, 0.5) - pct(direct, 0.5):+.1f} ms,"
              f" p95 {pct(through, 0.95) - pct(direct, 0.95):+.1f} ms")
        # CPU time does not grow with the machine's load as waiting does: what each
        # process spent per call (enrollment answered both kinds; the gateway one),
        # less its idle rate
        print(f"  idle CPU: gateway {idle['gateway'] * 1000:.0f} ms/s,"
              f" enrollment {idle['enrollment'] * 1000:.0f} ms/s")
        n_calls = (args.api_calls + 2) * args.staff
        print(f"  CPU per call: gateway {cpu['gateway'] * 1000 / n_calls:.2f} ms (forwarding),"
              f" enrollment {cpu['enrollment'] * 1000 / (2 * n_calls):.2f} ms (answering)")


if __name__ == "__main__":
    main()
