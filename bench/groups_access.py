"""Groups: the access check, a member page and the 202 of a large group message.

Builds 10,000 groups (personal ones, 1,000 of them with subgroup trees five deep;
LWIA groups with office and caseload subgroups; program groups), 1,000,000
memberships and 2,000 staff (owners, co-owners, IWDS grants at every level,
program staff) straight into a fresh groups database, then runs identity and
groups as processes and measures:

- the access check in-process (the use case behind GET /v1/access/customers/{id},
  its audit row included) and over HTTP, for staff and customers drawn at random;
- a member-list page (50 members) of the 100,000-member group over HTTP;
- the time to the 202 of a message to a 5,000- and a 100,000-member group.

    .venv/bin/python bench/groups_access.py [--samples 2000] [--seed 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import (
    PASSWORD,
    LeanClient,
    bench_stack,
    identity_env,
    pct,
    wait_ready,
)

from shared.devstack.processes import free_port

GROUPS, MEMBERSHIPS, STAFF = 10_000, 1_000_000, 2_000
LWIAS, OFFICES, CASELOADS = 25, 4, 5  # offices per LWIA, caseloads per office


def line(label: str, ms: list[float]) -> str:
    return (f"{label}: p50 {pct(ms, 0.5):.2f} ms, p99 {pct(ms, 0.99):.2f} ms"
            f" ({len(ms)} samples)")


async def seed(dsn: str, rng: random.Random, real: dict[str, uuid.UUID]) -> dict[str, Any]:
    """Everything straight into groups' tables (COPY); returns what the runs need."""
    conn = await asyncpg.connect(dsn)
    staff = [real["bench.owner"], real["bench.state"], real["bench.office"],
             real["bench.caseload"], real["bench.none"]]
    staff += [uuid.uuid4() for _ in range(STAFF - len(staff))]
    names = {v: k for k, v in real.items()}
    await conn.copy_records_to_table("staff", columns=("id", "username", "name", "roles"),
                                     records=[(s, names.get(s, f"bench.s{i}"), "Staff",
                                               ["staff"]) for i, s in enumerate(staff)])
    groups: list[tuple[Any, ...]] = []
    owners: list[tuple[Any, ...]] = []
    members: list[tuple[uuid.UUID, uuid.UUID, str]] = []

    def group(kind: str, name: str, parent: tuple[Any, ...] | None, owner: uuid.UUID | None,
              **scope: Any) -> tuple[Any, ...]:
        gid = uuid.uuid4()
        path = [*(parent[4] if parent else []), gid]
        join = uuid.uuid4().hex[:10] if kind == "personal" and parent is None else None
        row = (gid, kind, name, parent[0] if parent else None, path, len(path), owner, join,
               "BENCHPAS" if join else None, scope.get("feed_key"), scope.get("lwia"),
               scope.get("office"), scope.get("caseload"), scope.get("program"))
        groups.append(row)
        if owner is not None:
            owners.append((gid, owner, "owner"))
        return row

    # LWIA groups: 25 LWIAs, 4 offices each, 5 caseloads per office (625 groups)
    customers = [uuid.uuid4() for _ in range(400_000)]
    iwds_people = customers[:200_000]
    caseloads: list[tuple[Any, ...]] = []
    for lw in range(LWIAS):
        root = group("lwia", f"LWIA {lw}", None, None, feed_key=f"lwia:{lw}", lwia=str(lw))
        for of in range(OFFICES):
            office = group("lwia", f"LWIA {lw} office {of}", root, None,
                           feed_key=f"office:{lw}/{of}", lwia=str(lw), office=str(of))
            for cl in range(CASELOADS):
                cm = f"S{lw}-{of}-{cl}"
                caseloads.append(group("lwia", f"caseload {cm}", office, None,
                                       feed_key=f"caseload:{lw}/{of}/{cm}", lwia=str(lw),
                                       office=str(of), caseload=cm))
    for c in iwds_people:  # each in an LWIA, an office and a caseload: 600,000
        cl = rng.choice(caseloads)
        for gid in cl[4]:
            members.append((gid, c, "iwds"))
    programs = [group("program", f"Program p{p}", None, None, feed_key=f"program:p{p}",
                      program=f"p{p}") for p in range(5)]
    for c in rng.sample(customers, 50_000):
        members.append((rng.choice(programs)[0], c, "program"))

    # personal groups: one of 100,000 and one of 5,000 members owned by bench.owner
    big = group("personal", "Everyone", None, real["bench.owner"])
    mid = group("personal", "Spring cohort", None, real["bench.owner"])
    pool_c = customers[200_000:]
    members += [(big[0], c, "passcode") for c in pool_c[:100_000]]
    members += [(mid[0], c, "invitation") for c in pool_c[100_000:105_000]]
    # 1,000 trees five deep (4 subgroups under each root): 5,000 groups
    roots_left = GROUPS - len(groups) - 4_000
    personal = [group("personal", f"Group {i}", None, rng.choice(staff))
                for i in range(roots_left)]
    for i, root in enumerate(personal[:1_000]):
        chain = [root]
        for d in range(4):
            chain.append(group("personal", f"Group {i} level {d + 2}", chain[-1], chain[0][6]))
        root_members = rng.sample(customers, 40)
        for depth, g in enumerate(chain):
            for c in root_members[:40 >> depth]:
                members.append((g[0], c, "staff"))
    # co-owners on a tenth of the roots
    for root in rng.sample(personal, len(personal) // 10):
        co = rng.choice(staff)
        if co != root[6]:
            owners.append((root[0], co, "co-owner"))
    # the rest of the million spread over the other personal roots
    rest = personal[1_000:]
    while len(members) < MEMBERSHIPS:
        g = rng.choice(rest)
        members.append((g[0], rng.choice(customers), "passcode"))
    members = list({(m[0], m[1]): m for m in members}.values())
    while len(members) < MEMBERSHIPS:  # dedup took some: top up
        members.append((rng.choice(rest)[0], uuid.uuid4(), "passcode"))

    cols = ("id", "kind", "name", "parent_id", "path", "depth", "owner_id", "join_code",
            "passcode", "feed_key", "lwia_code", "office_code", "caseload_of", "program")
    await conn.copy_records_to_table("groups", columns=cols, records=groups)
    await conn.copy_records_to_table("group_owners", columns=("group_id", "staff_id", "role"),
                                     records=owners)
    await conn.copy_records_to_table(
        "customers", columns=("id", "username", "first_name", "last_name"),
        records=[(c, f"c{i}", "Pat", f"Name{i % 997}") for i, c in enumerate(customers)])
    await conn.copy_records_to_table("memberships",
                                     columns=("group_id", "customer_id", "source"),
                                     records=members)
    # IWDS grants: 10 statewide, 100 LWIA, 400 office, 500 caseload staff
    grants = [("I-state", "bench.state", "statewide", None, None),
              ("I-office", "bench.office", "office", "3", "1"),
              ("S3-1-2", "bench.caseload", "caseload", "3", None)]
    for i, _s in enumerate(staff[5:1_015]):
        u = f"bench.s{i + 5}"
        if i < 10:
            grants.append((f"I{i}", u, "statewide", None, None))
        elif i < 110:
            grants.append((f"I{i}", u, "lwia", str(i % LWIAS), None))
        elif i < 510:
            grants.append((f"I{i}", u, "office", str(i % LWIAS), str(i % OFFICES)))
        else:
            lw, of, cl = i % LWIAS, i % OFFICES, i % CASELOADS
            grants.append((f"S{lw}-{of}-{cl}", u, "caseload", str(lw), None))
    await conn.copy_records_to_table(
        "iwds_grants", columns=("iwds_staff_id", "worknet_username", "level", "lwia_code",
                                "office_code"), records=grants)
    await conn.copy_records_to_table(
        "program_staff", columns=("program", "staff_id"),
        records=[(f"p{i % 5}", s) for i, s in enumerate(staff[1_015:1_065])])
    await conn.execute("VACUUM ANALYZE")
    counts = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM groups) AS g, (SELECT count(*) FROM memberships) AS m,"
        " (SELECT count(*) FROM staff) AS s, (SELECT max(depth) FROM groups) AS d")
    await conn.close()
    assert counts is not None
    return {"staff": staff, "customers": customers, "big": big[0], "mid": mid[0],
            "counts": dict(counts)}


async def in_process(dsn: str, staff_ids: list[uuid.UUID], customers: list[uuid.UUID],
                     rng: random.Random, n: int) -> tuple[list[float], int]:
    from groups.service import access
    from groups.service.common import Caller
    from shared.servicekit.db import create_pool
    from shared.servicekit.errors import NotFound

    pool = await create_pool(dsn, min_size=1, max_size=2)
    times, hits = [], 0
    for i in range(n + 100):
        staff = rng.choice(staff_ids)
        customer = rng.choice(customers)
        t = time.perf_counter()
        async with pool.acquire() as conn, conn.transaction():
            try:
                await access.explain(conn, Caller(staff, "staff"), customer)
                hit = True
            except NotFound:
                hit = False
        if i >= 100:
            times.append((time.perf_counter() - t) * 1000)
            hits += hit
    await pool.close()
    return times, hits


async def check_only(dsn: str, staff_ids: list[uuid.UUID], customers: list[uuid.UUID],
                     rng: random.Random, n: int) -> list[float]:
    """The lookups alone (no transaction, no audit row): what the rule itself costs."""
    from groups.service import access

    conn = await asyncpg.connect(dsn)
    times = []
    for i in range(n + 100):
        staff, customer = rng.choice(staff_ids), rng.choice(customers)
        t = time.perf_counter()
        await access.paths(conn, staff, customer, admin=False)
        if i >= 100:
            times.append((time.perf_counter() - t) * 1000)
    await conn.close()
    return times


async def over_http(port: int, token: str, paths: list[str]) -> tuple[list[float], dict[int, int]]:
    client = LeanClient("127.0.0.1", port)
    headers = {"Authorization": f"Bearer {token}"}
    times: list[float] = []
    statuses: dict[int, int] = {}
    for i, path in enumerate(paths):
        req = LeanClient.encode("GET", path, b"", headers)
        t = time.perf_counter()
        status, _ = await client.send(req)
        if i >= 50:
            times.append((time.perf_counter() - t) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
    await client.close()
    return times, statuses


async def member_pages(port: int, token: str, group: uuid.UUID, n: int) -> list[float]:
    import json
    client = LeanClient("127.0.0.1", port)
    headers = {"Authorization": f"Bearer {token}"}
    times: list[float] = []
    cursor = None
    for i in range(n + 20):
        path = f"/v1/groups/{group}/members?limit=50" + (f"&cursor={cursor}" if cursor else "")
        t = time.perf_counter()
        status, body = await client.send(LeanClient.encode("GET", path, b"", headers))
        assert status == 200, body[:300]
        if i >= 20:
            times.append((time.perf_counter() - t) * 1000)
        cursor = json.loads(body)["next_cursor"]
    await client.close()
    return times


async def message(port: int, token: str, group: uuid.UUID) -> tuple[float, int]:
    import json
    client = LeanClient("127.0.0.1", port)
    body = json.dumps({"subject": "Reminder", "body": "Class moves to room 4 on Tuesday."})
    req = LeanClient.encode("POST", f"/v1/groups/{group}/messages", body.encode(),
                            {"Authorization": f"Bearer {token}"})
    t = time.perf_counter()
    status, out = await client.send(req)
    ms = (time.perf_counter() - t) * 1000
    await client.close()
    assert status == 202, out[:300]
    return ms, int(json.loads(out)["recipients"])


async def make_staff(identity_dsn: str) -> dict[str, uuid.UUID]:
    from identity.deps import Deps as IdentityDeps
    from identity.service.accounts import create_staff
    from identity.settings import IdentitySettings
    from shared.servicekit.db import create_pool

    pool = await create_pool(identity_dsn, min_size=1, max_size=2)
    ids = IdentityDeps.from_settings(IdentitySettings())
    out = {}
    for u in ("bench.owner", "bench.state", "bench.office", "bench.caseload", "bench.none"):
        out[u] = await create_staff(pool, ids, username=u, first_name="Robin",
                                    last_name="Case", email=None, roles=["staff"],
                                    password=PASSWORD)
    await pool.close()
    return out


async def sign_in(url: str, username: str) -> str:
    import httpx
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        r = await c.post("/v1/auth/token", data={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])


async def create_databases(admin_dsn: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute("CREATE DATABASE identity")
    await conn.execute("CREATE DATABASE groups")
    await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with bench_stack() as stack:
        pg = stack.pg
        identity_dsn, groups_dsn = pg.dsn("identity"), pg.dsn("groups")
        env = identity_env(identity_dsn, stack.broker.bootstrap,
                           CSC_KAFKA_CONSUMER_MODE="assign", GROUPS_DATABASE_URL=groups_dsn)
        os.environ.update(env)
        asyncio.run(create_databases(pg.dsn()))
        from groups.app import SPEC as GROUPS
        from identity.app import SPEC as IDENTITY
        from shared.servicekit.runtime import migrate_database
        asyncio.run(migrate_database(IDENTITY, identity_dsn))
        asyncio.run(migrate_database(GROUPS, groups_dsn))
        real = asyncio.run(make_staff(identity_dsn))
        t = time.perf_counter()
        data = asyncio.run(seed(groups_dsn, rng, real))
        c = data["counts"]
        print(f"{os.cpu_count()} cores; {c['g']:,} groups (deepest {c['d']} levels),"
              f" {c['m']:,} memberships, {c['s']:,} staff; seeded in"
              f" {time.perf_counter() - t:.0f} s")

        for label, who in (("random staff", data["staff"]),
                           ("bench.state", [real["bench.state"]]),
                           ("bench.owner", [real["bench.owner"]])):
            times, hits = asyncio.run(in_process(groups_dsn, who, data["customers"], rng,
                                                 args.samples))
            print(line(f"access check in-process as {label} (use case + audit row)", times)
                  + f"; {hits} reached")
            times = asyncio.run(check_only(groups_dsn, who, data["customers"], rng,
                                           args.samples))
            print(line(f"  the lookups alone as {label}", times))

        id_port, gr_port = free_port(), free_port()
        env["CSC_JWKS_URL"] = f"http://127.0.0.1:{id_port}/.well-known/jwks.json"
        for package, port in (("identity", id_port), ("groups", gr_port)):
            stack.start(package, port, env)
            asyncio.run(wait_ready(f"http://127.0.0.1:{port}", stack.procs[-1], package))
        identity_url = f"http://127.0.0.1:{id_port}"
        tokens = {u: asyncio.run(sign_in(identity_url, u)) for u in real}
        owner = tokens["bench.owner"]

        for who in ("bench.owner", "bench.state", "bench.caseload", "bench.none"):
            paths = [f"/v1/access/customers/{rng.choice(data['customers'])}"
                     for _ in range(args.samples // 4 + 50)]
            times, statuses = asyncio.run(over_http(gr_port, tokens[who], paths))
            print(line(f"access check over HTTP as {who}", times) + f"; answers {statuses}")

        times = asyncio.run(member_pages(gr_port, owner, data["big"], 500))
        print(line("member page (50) of the 100,000-member group over HTTP", times))

        for label, group in (("5,000", data["mid"]), ("100,000", data["big"])):
            runs = [asyncio.run(message(gr_port, owner, group)) for _ in range(3)]
            print(f"message to the {label}-member group: 202 in "
                  + ", ".join(f"{ms:.0f} ms" for ms, _ in runs)
                  + f" ({runs[0][1]:,} recipients)")


if __name__ == "__main__":
    main()
