"""Every SQL statement of sync-iwds: runs, rejected rows, staging, the diff, state."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.servicekit.db import Connection
from sync_iwds.domain import Counts, Feed, Rejection

# advisory lock keys: one per live run (held on the staging connection), one per feed
RUN_LOCK = 0x49574452  # "IWDR"
FEED_LOCK = 0x49574446  # "IWDF"

# the bulk statements of a million-row run may run longer than the pool's default
# statement timeout (60 s) on a busy machine
HEAVY = 3600.0

STAGE_PEOPLE_COLUMNS = (
    "run_id", "line", "iwds_person_id", "worknet_account_id", "lwia_code", "office_code",
    "case_manager_staff_id", "first_name", "last_name", "date_of_birth", "program", "status",
    "exit_date", "updated_at", "hash",
)
STAGE_GRANT_COLUMNS = (
    "run_id", "line", "iwds_staff_id", "worknet_username", "level", "lwia_code", "office_code",
)


@dataclass(frozen=True)
class Run:
    id: uuid.UUID
    feed: Feed
    mode: str
    kind: str
    source: str
    status: str
    phase: str
    file_path: str | None
    staged_rows: int
    counts: Counts
    message: str | None
    started_at: datetime
    finished_at: datetime | None


def _run(r: Any) -> Run:
    counts = Counts(**{k: int(v) for k, v in (r["counts"] or {}).items()
                       if k in Counts.__dataclass_fields__})
    return Run(r["id"], r["feed"], r["mode"], r["kind"], r["source"], r["status"], r["phase"],
               r["file_path"], r["staged_rows"], counts, r["message"], r["started_at"],
               r["finished_at"])


_RUN_COLUMNS = ("id, feed, mode, kind, source, status, phase, file_path, staged_rows, counts,"
                " message, started_at, finished_at")


async def insert_run(conn: Connection, run: Run) -> None:
    await conn.execute(
        "INSERT INTO iwds_runs (id, feed, mode, kind, source, status, phase, file_path,"
        " counts, started_at) VALUES ($1, $2, $3, $4, $5, 'running', 'reading', $6, $7, $8)"
        " ON CONFLICT (id) DO NOTHING",
        run.id, run.feed, run.mode, run.kind, run.source, run.file_path,
        run.counts.as_dict(), run.started_at)


async def get_run(conn: Connection, run_id: uuid.UUID, *, for_update: bool = False
                  ) -> Run | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await conn.fetchrow(
        f"SELECT {_RUN_COLUMNS} FROM iwds_runs WHERE id = $1{lock}", run_id)  # noqa: S608
    return _run(row) if row else None


async def list_runs(conn: Connection, *, limit: int, after: tuple[datetime, uuid.UUID] | None
                    ) -> list[Run]:
    if after is None:
        rows = await conn.fetch(
            f"SELECT {_RUN_COLUMNS} FROM iwds_runs"  # noqa: S608
            " ORDER BY started_at DESC, id DESC LIMIT $1", limit)
    else:
        rows = await conn.fetch(
            f"SELECT {_RUN_COLUMNS} FROM iwds_runs"  # noqa: S608
            " WHERE (started_at, id) < ($2, $3) ORDER BY started_at DESC, id DESC LIMIT $1",
            limit, after[0], after[1])
    return [_run(r) for r in rows]


async def set_staged(conn: Connection, run_id: uuid.UUID, staged: int, counts: Counts) -> None:
    await conn.execute(
        "UPDATE iwds_runs SET phase = 'staged', staged_rows = $2, counts = $3 WHERE id = $1",
        run_id, staged, counts.as_dict())


async def finish_run(conn: Connection, run_id: uuid.UUID, *, status: str, counts: Counts,
                     message: str | None, at: datetime | None, phase: str | None = None
                     ) -> None:
    await conn.execute(
        "UPDATE iwds_runs SET status = $2, counts = $3, message = $4, finished_at = $5,"
        " phase = coalesce($6, phase) WHERE id = $1",
        run_id, status, counts.as_dict(), message, at, phase)


async def orphan_candidates(conn: Connection) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT id FROM iwds_runs WHERE status = 'running' ORDER BY started_at")
    return [r["id"] for r in rows]


async def try_lock_run(conn: Connection, run_id: uuid.UUID) -> bool:
    """Session lock that says "this run's process is alive"."""
    return bool(await conn.fetchval(
        "SELECT pg_try_advisory_lock($1, hashtext($2))", RUN_LOCK, str(run_id)))


async def unlock_run(conn: Connection, run_id: uuid.UUID) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", RUN_LOCK, str(run_id))


async def lock_feed(conn: Connection, feed: Feed) -> None:
    """Applies of one feed take turns (transaction lock)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", FEED_LOCK, feed,
                       timeout=HEAVY)


# -- staging -----------------------------------------------------------------------------


async def copy_stage(conn: Connection, feed: Feed, rows: Sequence[tuple[Any, ...]]) -> None:
    if feed == "participants":
        await conn.copy_records_to_table(
            "iwds_stage_people", columns=STAGE_PEOPLE_COLUMNS, records=rows, timeout=HEAVY)
    else:
        await conn.copy_records_to_table(
            "iwds_stage_grants", columns=STAGE_GRANT_COLUMNS, records=rows, timeout=HEAVY)


async def copy_rejected(conn: Connection, run_id: uuid.UUID, rejected: Sequence[Rejection]
                        ) -> None:
    await conn.copy_records_to_table(
        "iwds_rejected", columns=("run_id", "line", "iwds_id", "reason"),
        records=[(run_id, r.line, r.iwds_id, r.reason) for r in rejected])


async def count_staged(conn: Connection, feed: Feed, run_id: uuid.UUID) -> int:
    table = "iwds_stage_people" if feed == "participants" else "iwds_stage_grants"
    return int(await conn.fetchval(
        f"SELECT count(*) FROM {table} WHERE run_id = $1", run_id,  # noqa: S608
        timeout=HEAVY))


async def analyze_stage(conn: Connection, feed: Feed) -> None:
    table = "iwds_stage_people" if feed == "participants" else "iwds_stage_grants"
    await conn.execute(f"ANALYZE {table}", timeout=HEAVY)


async def clear_stage(conn: Connection, feed: Feed, run_id: uuid.UUID) -> None:
    """Drop a run's staged rows (TRUNCATE when no other run has rows staged)."""
    table = "iwds_stage_people" if feed == "participants" else "iwds_stage_grants"
    others = await conn.fetchval(
        "SELECT count(*) FROM iwds_runs WHERE id <> $1 AND feed = $2"
        " AND (status = 'held' OR status = 'running')", run_id, feed)
    if others:
        await conn.execute(f"DELETE FROM {table} WHERE run_id = $1", run_id,  # noqa: S608
                           timeout=HEAVY)
    else:
        await conn.execute(f"TRUNCATE {table}", timeout=HEAVY)


async def delete_rejected(conn: Connection, run_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM iwds_rejected WHERE run_id = $1", run_id)


async def rejected_rows(conn: Connection, run_id: uuid.UUID) -> AsyncIterator[tuple[int, str, str]]:
    async for r in conn.cursor(
            "SELECT line, iwds_id, reason FROM iwds_rejected WHERE run_id = $1 ORDER BY line",
            run_id, prefetch=2000):
        yield r["line"], r["iwds_id"], r["reason"]


# -- participants: diff and apply ------------------------------------------------------------

_PEOPLE_FIELDS = ("worknet_account_id, lwia_code, office_code, case_manager_staff_id,"
                  " first_name, last_name, date_of_birth, program, status, exit_date,"
                  " updated_at, hash")


async def diff_people(conn: Connection, run_id: uuid.UUID, *, full: bool) -> dict[str, int]:
    """Classify the run's rows into a temp table: a(dded), c(hanged), u(nchanged), s(tale);
    with ``full`` also the held records missing from the file (``iwds_gone``)."""
    await conn.execute("SET LOCAL work_mem = '128MB'")
    await conn.execute(
        "CREATE TEMP TABLE iwds_diff ON COMMIT DROP AS"
        " SELECT s.iwds_person_id,"
        "  CASE WHEN p.iwds_person_id IS NULL THEN 'a'"
        "       WHEN s.updated_at < p.updated_at THEN 's'"
        "       WHEN s.hash = p.hash THEN 'u' ELSE 'c' END AS k"
        " FROM iwds_stage_people s LEFT JOIN iwds_people p USING (iwds_person_id)"
        " WHERE s.run_id = $1", run_id, timeout=HEAVY)
    counts = {r["k"]: r["n"] for r in await conn.fetch(
        "SELECT k, count(*) AS n FROM iwds_diff GROUP BY k", timeout=HEAVY)}
    if full:
        await conn.execute(
            "CREATE TEMP TABLE iwds_gone ON COMMIT DROP AS"
            " SELECT p.iwds_person_id FROM iwds_people p"
            " WHERE NOT EXISTS (SELECT 1 FROM iwds_stage_people s"
            "   WHERE s.run_id = $1 AND s.iwds_person_id = p.iwds_person_id)", run_id,
            timeout=HEAVY)
        counts["r"] = await conn.fetchval("SELECT count(*) FROM iwds_gone", timeout=HEAVY)
    await conn.execute("ANALYZE iwds_diff", timeout=HEAVY)
    return counts


async def count_people(conn: Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM iwds_people", timeout=HEAVY))


async def apply_people(conn: Connection, run_id: uuid.UUID) -> None:
    await conn.execute(
        f"INSERT INTO iwds_people (iwds_person_id, {_PEOPLE_FIELDS})"  # noqa: S608
        f" SELECT s.iwds_person_id, {_PEOPLE_FIELDS.replace(', ', ', s.')}"
        " FROM iwds_stage_people s JOIN iwds_diff d USING (iwds_person_id)"
        " WHERE s.run_id = $1 AND d.k = 'a'", run_id, timeout=HEAVY)
    await conn.execute(
        "UPDATE iwds_people p SET worknet_account_id = s.worknet_account_id,"
        " lwia_code = s.lwia_code, office_code = s.office_code,"
        " case_manager_staff_id = s.case_manager_staff_id, first_name = s.first_name,"
        " last_name = s.last_name, date_of_birth = s.date_of_birth, program = s.program,"
        " status = s.status, exit_date = s.exit_date, updated_at = s.updated_at, hash = s.hash,"
        " link_tried_at = NULL"
        " FROM iwds_stage_people s JOIN iwds_diff d USING (iwds_person_id)"
        " WHERE s.run_id = $1 AND d.k = 'c' AND p.iwds_person_id = s.iwds_person_id", run_id,
        timeout=HEAVY)


_PERSON_EVENT = (
    "SELECT p.iwds_person_id, coalesce(p.worknet_account_id, p.linked_account_id) AS account_id,"
    " p.lwia_code, p.office_code, p.case_manager_staff_id, p.program, p.status, p.exit_date")


# The envelope (shared/schemas/envelope.py) built in SQL for the bulk events of a
# run: one INSERT ... SELECT instead of a million pydantic models. The payload's
# fields are exactly IwdsRecordUpdated's / IwdsRecordRemoved's; a contract test
# parses these rows back with Envelope and the event models.
_ENVELOPE = (
    "INSERT INTO outbox (event_id, topic, subject, event_type, value)"
    " SELECT e.id, $1, e.subject, $2, convert_to(json_build_object("
    "  'event_id', e.id, 'type', $2::text, 'version', 1, 'occurred_at', $3::timestamptz,"
    "  'producer', $4::text, 'correlation_id', $5::text, 'causation_id', $6::text,"
    "  'subject', e.subject, 'payload', e.payload)::text, 'UTF8')"
    " FROM (SELECT gen_random_uuid() AS id, p.iwds_person_id AS subject, {payload} AS payload"
    "       FROM {source} ORDER BY p.iwds_person_id) e")
_UPDATED_PAYLOAD = (
    "json_build_object('iwds_person_id', p.iwds_person_id,"
    " 'account_id', coalesce(p.worknet_account_id, p.linked_account_id),"
    " 'lwia_code', p.lwia_code, 'office_code', p.office_code,"
    " 'case_manager_staff_id', p.case_manager_staff_id, 'program', p.program,"
    " 'status', p.status, 'exit_date', p.exit_date)")
_REMOVED_PAYLOAD = (
    "json_build_object('iwds_person_id', p.iwds_person_id,"
    " 'account_id', coalesce(p.worknet_account_id, p.linked_account_id),"
    " 'lwia_code', p.lwia_code, 'office_code', p.office_code)")


@dataclass(frozen=True)
class EnvelopeMeta:
    topic: str
    event_type: str
    occurred_at: datetime
    producer: str
    correlation_id: str | None
    causation_id: str | None


async def add_updated_events(conn: Connection, meta: EnvelopeMeta) -> None:
    """IwdsRecordUpdated for the run's added and changed records, one statement."""
    await conn.execute(
        _ENVELOPE.format(payload=_UPDATED_PAYLOAD, source=(
            "iwds_diff d JOIN iwds_people p USING (iwds_person_id) WHERE d.k IN ('a', 'c')")),
        meta.topic, meta.event_type, meta.occurred_at, meta.producer, meta.correlation_id,
        meta.causation_id, timeout=HEAVY)


async def add_removed_events(conn: Connection, meta: EnvelopeMeta) -> None:
    """IwdsRecordRemoved for the records missing from a full extract (before removal)."""
    await conn.execute(
        _ENVELOPE.format(payload=_REMOVED_PAYLOAD, source=(
            "iwds_gone g JOIN iwds_people p USING (iwds_person_id)")),
        meta.topic, meta.event_type, meta.occurred_at, meta.producer, meta.correlation_id,
        meta.causation_id, timeout=HEAVY)


async def remove_gone(conn: Connection) -> None:
    await conn.execute(
        "DELETE FROM iwds_people p USING iwds_gone g WHERE p.iwds_person_id = g.iwds_person_id",
        timeout=HEAVY)


async def count_unlinked(conn: Connection, run_id: uuid.UUID) -> int:
    """The run's records that have no account (neither from IWDS nor linked)."""
    return int(await conn.fetchval(
        "SELECT count(*) FROM iwds_stage_people s JOIN iwds_people p USING (iwds_person_id)"
        " WHERE s.run_id = $1 AND p.worknet_account_id IS NULL"
        " AND p.linked_account_id IS NULL", run_id, timeout=HEAVY))


# -- staff access --------------------------------------------------------------------------


async def diff_staff(conn: Connection, run_id: uuid.UUID, *, full: bool) -> dict[str, int]:
    await conn.execute(
        "CREATE TEMP TABLE iwds_staff_new ON COMMIT DROP AS"
        " SELECT n.*, decode(md5(coalesce(n.worknet_username, '') || chr(31)"
        "        || n.grants::text), 'hex') AS hash FROM ("
        "  SELECT iwds_staff_id, max(worknet_username) AS worknet_username,"
        "   jsonb_agg(jsonb_build_object('level', level, 'lwia_code', lwia_code,"
        "     'office_code', office_code) ORDER BY level, lwia_code NULLS FIRST,"
        "     office_code NULLS FIRST) AS grants"
        "  FROM iwds_stage_grants WHERE run_id = $1 GROUP BY iwds_staff_id) n", run_id)
    await conn.execute(
        "CREATE TEMP TABLE iwds_staff_diff ON COMMIT DROP AS"
        " SELECT n.iwds_staff_id,"
        "  CASE WHEN o.iwds_staff_id IS NULL OR o.grants = '[]'::jsonb THEN 'a'"
        "       WHEN o.hash = n.hash THEN 'u' ELSE 'c' END AS k"
        " FROM iwds_staff_new n LEFT JOIN iwds_staff o USING (iwds_staff_id)")
    counts = {r["k"]: r["n"] for r in await conn.fetch(
        "SELECT k, count(*) AS n FROM iwds_staff_diff GROUP BY k")}
    if full:
        await conn.execute(
            "INSERT INTO iwds_staff_diff (iwds_staff_id, k)"
            " SELECT o.iwds_staff_id, 'r' FROM iwds_staff o"
            " WHERE o.grants <> '[]'::jsonb AND NOT EXISTS"
            "  (SELECT 1 FROM iwds_staff_new n WHERE n.iwds_staff_id = o.iwds_staff_id)")
        counts["r"] = await conn.fetchval("SELECT count(*) FROM iwds_staff_diff WHERE k = 'r'")
    return counts


async def count_staff_with_grants(conn: Connection) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM iwds_staff WHERE grants <> '[]'::jsonb"))


async def apply_staff(conn: Connection) -> None:
    await conn.execute(
        "INSERT INTO iwds_staff (iwds_staff_id, worknet_username, grants, hash)"
        " SELECT n.iwds_staff_id, n.worknet_username, n.grants, n.hash"
        " FROM iwds_staff_new n JOIN iwds_staff_diff d USING (iwds_staff_id)"
        " WHERE d.k IN ('a', 'c')"
        " ON CONFLICT (iwds_staff_id) DO UPDATE SET worknet_username = excluded.worknet_username,"
        " grants = excluded.grants, hash = excluded.hash")
    await conn.execute(
        "UPDATE iwds_staff o SET grants = '[]'::jsonb,"
        " hash = decode(md5(coalesce(o.worknet_username, '') || chr(31) || '[]'), 'hex')"
        " FROM iwds_staff_diff d WHERE d.k = 'r' AND d.iwds_staff_id = o.iwds_staff_id")


async def changed_staff(conn: Connection) -> list[Any]:
    return list(await conn.fetch(
        "SELECT o.iwds_staff_id, o.worknet_username, o.grants FROM iwds_staff_diff d"
        " JOIN iwds_staff o USING (iwds_staff_id) WHERE d.k IN ('a', 'c', 'r')"
        " ORDER BY o.iwds_staff_id"))


# -- linking -------------------------------------------------------------------------------


async def person_for_update(conn: Connection, person_id: str) -> Any:
    return await conn.fetchrow(
        _PERSON_EVENT + ", p.worknet_account_id, p.linked_account_id"
        " FROM iwds_people p WHERE p.iwds_person_id = $1 FOR UPDATE", person_id)


async def set_link(conn: Connection, person_id: str, account_id: uuid.UUID | None, by: str
                   ) -> None:
    await conn.execute(
        "UPDATE iwds_people SET linked_account_id = $2, linked_by = $3 WHERE iwds_person_id = $1",
        person_id, account_id, by)


async def unlinked_batch(conn: Connection, limit: int, tried_before: datetime) -> list[Any]:
    return list(await conn.fetch(
        "SELECT iwds_person_id, first_name, last_name, date_of_birth FROM iwds_people"
        " WHERE worknet_account_id IS NULL AND linked_account_id IS NULL"
        " AND first_name IS NOT NULL AND last_name IS NOT NULL AND date_of_birth IS NOT NULL"
        " AND (link_tried_at IS NULL OR link_tried_at < $2)"
        " ORDER BY iwds_person_id LIMIT $1", limit, tried_before))


async def mark_link_tried(conn: Connection, person_ids: list[str], at: datetime) -> None:
    await conn.execute(
        "UPDATE iwds_people SET link_tried_at = $2 WHERE iwds_person_id = ANY($1::text[])",
        person_ids, at)
