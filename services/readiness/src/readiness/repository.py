"""All of readiness's SQL. Functions take the caller's connection and never commit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from readiness.domain import Catalogue, Record, Rejection, Stored
from shared.servicekit.db import Connection

# -- catalogue --------------------------------------------------------------------

CATALOGUE_TABLES = {"assessments": "catalogue_assessments", "modules": "catalogue_modules"}


async def catalogue_codes(conn: Connection) -> Catalogue:
    rows = await conn.fetch(
        "SELECT 'a' AS t, code FROM catalogue_assessments"
        " UNION ALL SELECT 'm', code FROM catalogue_modules")
    return Catalogue(frozenset(r["code"] for r in rows if r["t"] == "a"),
                     frozenset(r["code"] for r in rows if r["t"] == "m"))


async def catalogue(conn: Connection, which: str, *, active_only: bool = False
                    ) -> list[dict[str, Any]]:
    table = CATALOGUE_TABLES[which]
    where = " WHERE active" if active_only else ""
    rows = await conn.fetch(  # table and where are constants of this module
        "SELECT code, name, description, position, active FROM " + table + where  # noqa: S608
        + " ORDER BY position, code")
    return [dict(r) for r in rows]


async def put_catalogue_entry(conn: Connection, which: str, code: str, name: str,
                              description: str | None, position: int, active: bool) -> bool:
    """Insert or replace one entry; True when it is new."""
    table = CATALOGUE_TABLES[which]
    inserted: bool = await conn.fetchval(  # table: a constant of this module
        "INSERT INTO " + table + " (code"  # noqa: S608
        ", name, description, position, active)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,"
        " description = EXCLUDED.description, position = EXCLUDED.position,"
        " active = EXCLUDED.active, updated_at = now() RETURNING xmax = 0",
        code, name, description, position, active)
    return inserted


# -- ingest ---------------------------------------------------------------------------

_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS incoming_records ("
    " record_id text, kind text, account_id uuid, occurred_at timestamptz, code text,"
    " completed_at timestamptz, data text) ON COMMIT DELETE ROWS"
)
_STAGE_COLUMNS = ("record_id", "kind", "account_id", "occurred_at", "code", "completed_at",
                  "data")


async def store_records(conn: Connection, records: Sequence[Record], source: str
                        ) -> tuple[int, int]:
    """COPY into a staging table, then one set-based upsert: a new record_id is inserted,
    a known one is replaced only by a later occurred_at. Merged accounts' records go to
    their survivor. Returns (inserted, replaced); the rest were duplicates or stale."""
    if not records:
        return 0, 0
    await conn.execute(_STAGE)
    await conn.copy_records_to_table(
        "incoming_records", columns=_STAGE_COLUMNS,
        records=[(r.record_id, r.kind, r.account_id, r.occurred_at, r.code, r.completed_at,
                  json.dumps(r.data)) for r in records])
    row = await conn.fetchrow(
        "WITH done AS ("
        " INSERT INTO readiness_records AS t (record_id, kind, account_id,"
        "  original_account_id, occurred_at, code, completed_at, data, source)"
        " SELECT i.record_id, i.kind, coalesce(m.survivor_id, i.account_id), i.account_id,"
        "  i.occurred_at, i.code, i.completed_at, i.data::jsonb, $1"
        " FROM incoming_records i LEFT JOIN account_merges m ON m.merged_id = i.account_id"
        # one order for every writer: two feeds sending the same records never deadlock
        " ORDER BY i.record_id"
        " ON CONFLICT (record_id) DO UPDATE SET kind = EXCLUDED.kind,"
        "  account_id = EXCLUDED.account_id, original_account_id = EXCLUDED.original_account_id,"
        "  occurred_at = EXCLUDED.occurred_at, code = EXCLUDED.code,"
        "  completed_at = EXCLUDED.completed_at, data = EXCLUDED.data,"
        "  source = EXCLUDED.source, received_at = now()"
        " WHERE t.occurred_at < EXCLUDED.occurred_at"
        " RETURNING xmax = 0 AS inserted)"
        " SELECT count(*) FILTER (WHERE inserted) AS inserted,"
        "  count(*) FILTER (WHERE NOT inserted) AS replaced FROM done",
        source)
    assert row is not None
    return int(row["inserted"]), int(row["replaced"])


async def store_rejections(conn: Connection, rejected: Sequence[Rejection], source: str
                           ) -> None:
    if not rejected:
        return
    await conn.copy_records_to_table(
        "rejected_records", columns=("source", "line", "record_id", "kind", "reason", "raw"),
        records=[(source, r.line, r.record_id, r.kind, r.reason, r.raw) for r in rejected])


async def rejected(conn: Connection, after: int | None, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, source, line, record_id, kind, reason, received_at FROM rejected_records"
        " WHERE id < coalesce($1, 9223372036854775807) ORDER BY id DESC LIMIT $2",
        after, limit)
    return [dict(r) for r in rows]


# -- per customer -----------------------------------------------------------------------

async def survivor_of(conn: Connection, account_id: UUID) -> UUID:
    found: UUID | None = await conn.fetchval(
        "SELECT survivor_id FROM account_merges WHERE merged_id = $1", account_id)
    return found or account_id


async def records_of(conn: Connection, account_id: UUID) -> list[Stored]:
    rows = await conn.fetch(
        "SELECT record_id, kind, occurred_at, code, completed_at, data"
        " FROM readiness_records WHERE account_id = $1", account_id)
    return [Stored(r["record_id"], r["kind"], r["occurred_at"], r["code"], r["completed_at"],
                   r["data"]) for r in rows]


# -- groups, members, names -------------------------------------------------------------

async def upsert_group(conn: Connection, group_id: UUID, parent: UUID | None, name: str
                       ) -> None:
    await conn.execute(
        "INSERT INTO groups (group_id, parent_group_id, name) VALUES ($1, $2, $3)"
        " ON CONFLICT (group_id) DO UPDATE SET parent_group_id = EXCLUDED.parent_group_id,"
        " name = EXCLUDED.name", group_id, parent, name)


async def add_member(conn: Connection, group_id: UUID, customer_id: UUID, since: datetime
                     ) -> None:
    await conn.execute(
        "INSERT INTO group_members (group_id, customer_id, since) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING", group_id, customer_id, since)


async def remove_member(conn: Connection, group_id: UUID, customer_id: UUID) -> None:
    await conn.execute("DELETE FROM group_members WHERE group_id = $1 AND customer_id = $2",
                       group_id, customer_id)


async def upsert_customer(conn: Connection, customer_id: UUID, first_name: str | None,
                          last_name: str | None) -> None:
    await conn.execute(
        "INSERT INTO customers (id, first_name, last_name) VALUES ($1, $2, $3)"
        " ON CONFLICT (id) DO UPDATE SET"
        " first_name = coalesce(EXCLUDED.first_name, customers.first_name),"
        " last_name = coalesce(EXCLUDED.last_name, customers.last_name)",
        customer_id, first_name, last_name)


# -- the dashboard ------------------------------------------------------------------------
# The members of a group (with its subgroups when asked), each as the account that holds
# their records now (a merged member counts as their survivor).

_MEMBERS = (
    "WITH RECURSIVE tree AS ("
    "  SELECT $1::uuid AS id"
    "  UNION SELECT g.group_id FROM groups g JOIN tree t ON g.parent_group_id = t.id"
    "  WHERE $2::boolean),"
    " members AS ("
    "  SELECT DISTINCT coalesce(m.survivor_id, gm.customer_id) AS customer_id"
    "  FROM group_members gm LEFT JOIN account_merges m ON m.merged_id = gm.customer_id"
    "  WHERE gm.group_id IN (SELECT id FROM tree))"
)


DASHBOARD_COUNTS = (
    _MEMBERS  # noqa: S608 - constants of this module, values are bound
    + " SELECT NULL AS code, count(*) AS n FROM members"
    " UNION ALL"
    # per member, the codes they completed in the window: one probe of the partial
    # index (account_id, code, completed_at) each, never a scan of every record
    " SELECT done.code, count(*) FROM members mb CROSS JOIN LATERAL ("
    "  SELECT DISTINCT r.code FROM readiness_records r"
    "  WHERE r.account_id = mb.customer_id AND r.kind = 'assessment_completed'"
    "  AND ($3::timestamptz IS NULL OR r.completed_at >= $3)"
    "  AND ($4::timestamptz IS NULL OR r.completed_at < $4)) done"
    " GROUP BY done.code"
)


async def dashboard_counts(conn: Connection, group_id: UUID, include_subgroups: bool,
                           start: datetime | None, end: datetime | None
                           ) -> tuple[int, dict[str, int]]:
    """(members, assessment code -> members who completed it in [start, end))."""
    rows = await conn.fetch(
        DASHBOARD_COUNTS,
        group_id, include_subgroups, start, end)
    members = 0
    counts: dict[str, int] = {}
    for r in rows:
        if r["code"] is None:
            members = int(r["n"])
        else:
            counts[r["code"]] = int(r["n"])
    return members, counts


async def dashboard_people(
    conn: Connection, group_id: UUID, include_subgroups: bool, code: str,
    start: datetime | None, end: datetime | None, status: str | None,
    after: UUID | None, limit: int | None,
) -> list[dict[str, Any]]:
    """Members with their latest completion of ``code`` in the window (None: not
    completed), by customer id after ``after``; ``status`` narrows to one side."""
    rows = await conn.fetch(
        _MEMBERS  # noqa: S608 - constants of this module, values are bound
        + " SELECT mb.customer_id, c.first_name, c.last_name, done.completed_at"
        " FROM members mb LEFT JOIN customers c ON c.id = mb.customer_id"
        " LEFT JOIN LATERAL (SELECT max(r.completed_at) AS completed_at"
        "  FROM readiness_records r WHERE r.account_id = mb.customer_id"
        "  AND r.kind = 'assessment_completed' AND r.code = $3"
        "  AND ($4::timestamptz IS NULL OR r.completed_at >= $4)"
        "  AND ($5::timestamptz IS NULL OR r.completed_at < $5)) done ON true"
        " WHERE ($6::text IS NULL"
        "  OR ($6 = 'completed') = (done.completed_at IS NOT NULL))"
        " AND ($7::uuid IS NULL OR mb.customer_id > $7)"
        " ORDER BY mb.customer_id LIMIT $8",
        group_id, include_subgroups, code, start, end, status, after, limit)
    return [dict(r) for r in rows]


# -- merges ----------------------------------------------------------------------------------

async def merge(conn: Connection, survivor_id: UUID, merged_id: UUID) -> list[str]:
    """Records of the merged account (and of accounts merged into it) move to the
    survivor; returns the moved record ids."""
    await conn.execute(
        "INSERT INTO account_merges (merged_id, into_id, survivor_id) VALUES ($1, $2, $2)"
        " ON CONFLICT (merged_id) DO UPDATE SET into_id = $2, survivor_id = $2,"
        " merged_at = now()", merged_id, survivor_id)
    await conn.execute("UPDATE account_merges SET survivor_id = $1 WHERE survivor_id = $2",
                       survivor_id, merged_id)
    rows = await conn.fetch(
        "UPDATE readiness_records SET account_id = $1 WHERE account_id = $2"
        " RETURNING record_id", survivor_id, merged_id)
    return sorted(r["record_id"] for r in rows)


async def unmerge(conn: Connection, survivor_id: UUID, merged_id: UUID) -> list[str]:
    """The merge is undone: the records the producer sent for the merged account, and for
    accounts that had been merged into it, move back to it."""
    known = await conn.fetchval(
        "DELETE FROM account_merges WHERE merged_id = $1 RETURNING true", merged_id)
    if not known:
        return []
    rows = await conn.fetch(
        "WITH RECURSIVE under AS ("
        "  SELECT $1::uuid AS id"
        "  UNION SELECT m.merged_id FROM account_merges m JOIN under u ON m.into_id = u.id),"
        " relinked AS (UPDATE account_merges SET survivor_id = $1"
        "  WHERE merged_id IN (SELECT id FROM under) RETURNING merged_id)"
        " UPDATE readiness_records SET account_id = $1"
        " WHERE account_id = $2 AND original_account_id IN (SELECT id FROM under)"
        " RETURNING record_id", merged_id, survivor_id)
    return sorted(r["record_id"] for r in rows)
