"""Groups, their owners and their members."""

# ruff: noqa: S608 - the SQL is built from module constants; values are always $n parameters

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.servicekit.db import Connection

GROUP_COLS = ("id, kind, name, parent_id, path, depth, owner_id, join_code, passcode,"
              " feed_key, lwia_code, office_code, caseload_of, program, created_at")


async def insert_group(conn: Connection, *, id: UUID, kind: str, name: str,
                       parent: asyncpg.Record | None, owner_id: UUID | None,
                       join_code: str | None, passcode: str | None, now: datetime,
                       feed_key: str | None = None, lwia_code: str | None = None,
                       office_code: str | None = None, caseload_of: str | None = None,
                       program: str | None = None) -> asyncpg.Record:
    """A group; a subgroup inherits its parent's LWIA/office/caseload/program scope."""
    path = [*(parent["path"] if parent else []), id]
    if parent is not None:
        lwia_code = lwia_code or parent["lwia_code"]
        office_code = office_code or parent["office_code"]
        caseload_of = caseload_of or parent["caseload_of"]
        program = program or parent["program"]
    row = await conn.fetchrow(
        f"INSERT INTO groups ({GROUP_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
        " $10, $11, $12, $13, $14, $15) ON CONFLICT (feed_key) DO NOTHING"
        f" RETURNING {GROUP_COLS}",
        id, kind, name, parent["id"] if parent else None, path, len(path), owner_id,
        join_code, passcode, feed_key, lwia_code, office_code, caseload_of, program, now)
    if row is None:  # a concurrent consumer made the same feed group
        row = await conn.fetchrow(f"SELECT {GROUP_COLS} FROM groups WHERE feed_key = $1",
                                  feed_key)
    assert row is not None
    return row


async def group(conn: Connection, group_id: UUID, *, lock: bool = False
                ) -> asyncpg.Record | None:
    sql = f"SELECT {GROUP_COLS} FROM groups WHERE id = $1" + (" FOR UPDATE" if lock else "")
    return await conn.fetchrow(sql, group_id)


async def by_join_code(conn: Connection, join_code: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {GROUP_COLS} FROM groups WHERE join_code = $1",
                               join_code)


async def by_feed_key(conn: Connection, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {GROUP_COLS} FROM groups WHERE feed_key = $1", key)


async def set_passcode(conn: Connection, group_id: UUID, passcode: str | None) -> None:
    await conn.execute("UPDATE groups SET passcode = $2 WHERE id = $1", group_id, passcode)


async def groups_by_ids(conn: Connection, ids: Sequence[UUID]) -> list[asyncpg.Record]:
    return await conn.fetch(f"SELECT {GROUP_COLS} FROM groups WHERE id = ANY($1::uuid[])",
                            list(ids))


async def subtree(conn: Connection, group_id: UUID) -> list[UUID]:
    rows = await conn.fetch("SELECT id FROM groups WHERE path @> ARRAY[$1::uuid]", group_id)
    return [r["id"] for r in rows]


# -- owners --------------------------------------------------------------------------

async def add_owner(conn: Connection, group_id: UUID, staff_id: UUID, role: str,
                    now: datetime) -> bool:
    done = await conn.execute(
        "INSERT INTO group_owners (group_id, staff_id, role, since) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING", group_id, staff_id, role, now)
    return bool(done.endswith(" 1"))


async def remove_owner(conn: Connection, group_id: UUID, staff_id: UUID) -> bool:
    done = await conn.execute(
        "DELETE FROM group_owners WHERE group_id = $1 AND staff_id = $2", group_id, staff_id)
    return bool(done != "DELETE 0")


async def owners(conn: Connection, group_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT o.staff_id, o.role, o.since, s.username, s.name FROM group_owners o"
        " LEFT JOIN staff s ON s.id = o.staff_id WHERE o.group_id = $1"
        " ORDER BY o.role DESC, o.since", group_id)


async def owns(conn: Connection, path: Sequence[UUID], staff_id: UUID) -> bool:
    """Owner or co-owner of the group or of one of its ancestors."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM group_owners WHERE staff_id = $2"
        " AND group_id = ANY($1::uuid[]))", list(path), staff_id))


async def personal_roots_of(conn: Connection, staff_id: UUID) -> list[UUID]:
    rows = await conn.fetch(
        "SELECT id FROM groups WHERE owner_id = $1 AND parent_id IS NULL ORDER BY id",
        staff_id)
    return [r["id"] for r in rows]


async def hand_over(conn: Connection, roots: Sequence[UUID], from_: UUID, to: UUID,
                    now: datetime) -> None:
    """Every group of the trees under ``roots`` owned by ``from_`` goes to ``to``."""
    ids = [r["id"] for r in await conn.fetch(
        "SELECT id FROM groups WHERE path && $1::uuid[]", list(roots))]
    await conn.execute(
        "UPDATE groups SET owner_id = $3 WHERE id = ANY($1::uuid[]) AND owner_id = $2",
        ids, from_, to)
    moved = await conn.fetch(
        "DELETE FROM group_owners WHERE group_id = ANY($1::uuid[]) AND staff_id = $2"
        " RETURNING group_id, role", ids, from_)
    for r in moved:
        await conn.execute(
            "INSERT INTO group_owners (group_id, staff_id, role, since) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (group_id, staff_id) DO UPDATE SET role = CASE"
            " WHEN EXCLUDED.role = 'owner' THEN 'owner' ELSE group_owners.role END",
            r["group_id"], to, r["role"], now)


# -- members -------------------------------------------------------------------------

async def add_members(conn: Connection, group_id: UUID, customer_ids: Sequence[UUID],
                      source: str, now: datetime, by: UUID | None) -> list[UUID]:
    """The customers newly added (those already members keep their source and since)."""
    rows = await conn.fetch(
        "INSERT INTO memberships (group_id, customer_id, source, since, added_by)"
        " SELECT $1, c, $3, $4, $5 FROM unnest($2::uuid[]) AS c"
        " ON CONFLICT DO NOTHING RETURNING customer_id",
        group_id, list(customer_ids), source, now, by)
    return [r["customer_id"] for r in rows]


async def remove_member(conn: Connection, group_id: UUID, customer_id: UUID
                        ) -> list[asyncpg.Record]:
    """Out of the group and every subgroup of it; the memberships removed."""
    return await conn.fetch(
        "DELETE FROM memberships m USING groups g WHERE m.customer_id = $2"
        " AND g.id = m.group_id AND g.path @> ARRAY[$1::uuid]"
        " RETURNING m.group_id, g.kind, m.source", group_id, customer_id)


async def members_of(conn: Connection, group_id: UUID, customer_ids: Sequence[UUID]
                     ) -> set[UUID]:
    rows = await conn.fetch(
        "SELECT customer_id FROM memberships WHERE group_id = $1"
        " AND customer_id = ANY($2::uuid[])", group_id, list(customer_ids))
    return {r["customer_id"] for r in rows}


async def is_member(conn: Connection, group_id: UUID, customer_id: UUID) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM memberships WHERE group_id = $1 AND customer_id = $2)",
        group_id, customer_id))


async def member_count(conn: Connection, group_id: UUID) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM memberships WHERE group_id = $1", group_id))


async def member_counts(conn: Connection, ids: Sequence[UUID]) -> dict[UUID, int]:
    rows = await conn.fetch(
        "SELECT group_id, count(*) AS n FROM memberships WHERE group_id = ANY($1::uuid[])"
        " GROUP BY group_id", list(ids))
    return {r["group_id"]: r["n"] for r in rows}


async def members_page(conn: Connection, group_id: UUID, *, source: str | None,
                       q: str | None, after: UUID | None, limit: int
                       ) -> list[asyncpg.Record]:
    """Members in id order (the primary key's order: a page is an index range scan
    however large the group); ``q`` matches the start of either name."""
    args: list[Any] = [group_id, limit]
    where = ["m.group_id = $1"]
    if source:
        args.append(source)
        where.append(f"m.source = ${len(args)}")
    if q:
        args.append(q.lower().replace("\\", "\\\\").replace("%", "\\%")
                    .replace("_", "\\_") + "%")
        where.append(f"(lower(c.last_name) LIKE ${len(args)} OR lower(c.first_name)"
                     f" LIKE ${len(args)})")
    if after is not None:
        args.append(after)
        where.append(f"m.customer_id > ${len(args)}")
    if not q:
        # the page of memberships first, then its 50 names by primary key (a join over
        # the whole group would merge-scan the customers table)
        return await conn.fetch(
            "SELECT p.customer_id, c.first_name, c.last_name, p.source, p.since FROM ("
            "  SELECT m.customer_id, m.source, m.since FROM memberships m"
            f"  WHERE {' AND '.join(where)} ORDER BY m.customer_id LIMIT $2) p"
            " LEFT JOIN LATERAL (SELECT first_name, last_name FROM customers"
            "   WHERE id = p.customer_id) c ON true ORDER BY p.customer_id", *args)
    return await conn.fetch(
        "SELECT m.customer_id, c.first_name, c.last_name, m.source, m.since"
        " FROM memberships m LEFT JOIN customers c ON c.id = m.customer_id"
        f" WHERE {' AND '.join(where)}"
        " ORDER BY m.customer_id LIMIT $2", *args)


async def memberships_of(conn: Connection, customer_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT g.id, g.kind, g.name, g.parent_id, m.source, m.since FROM memberships m"
        " JOIN groups g ON g.id = m.group_id WHERE m.customer_id = $1"
        " ORDER BY g.depth, g.name, g.id", customer_id)
