"""SQL: enrollments, applications, history, and Add Customer's idempotency keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from enrollment.domain.records import Application, Enrollment, HistoryEntry, IntakeRequest
from shared.servicekit.db import Connection
from shared.servicekit.idempotency import IdempotencyStore

_ENROLLMENT = (
    "SELECT e.id, e.program, e.customer_id, e.status, e.status_on, e.status_reason,"
    " e.added_by, e.enrolled_on, e.exited_on, e.exit_reason, e.exit_note, e.created_at,"
    " e.updated_at, c.username, c.first_name, c.last_name"
    " FROM enrollments e LEFT JOIN customers c ON c.id = e.customer_id"
)


def _enrollment(r: asyncpg.Record) -> Enrollment:
    return Enrollment(
        id=r["id"], program=r["program"], customer_id=r["customer_id"], status=r["status"],
        status_on=r["status_on"], status_reason=r["status_reason"], added_by=r["added_by"],
        enrolled_on=r["enrolled_on"], exited_on=r["exited_on"], exit_reason=r["exit_reason"],
        exit_note=r["exit_note"], created_at=r["created_at"], updated_at=r["updated_at"],
        username=r["username"], first_name=r["first_name"], last_name=r["last_name"],
    )


async def lock_participation(conn: Connection, program: str, customer_id: UUID) -> None:
    """Serialises the use cases that open an enrollment of one customer in one program."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::text || ':' || $2::uuid::text, 0))",
        program, customer_id,
    )


async def open_enrollment(conn: Connection, program: str, customer_id: UUID) -> Enrollment | None:
    r = await conn.fetchrow(
        _ENROLLMENT + " WHERE e.program = $1 AND e.customer_id = $2 AND e.status <> 'exited'"
        " ORDER BY e.created_at DESC LIMIT 1", program, customer_id,
    )
    return _enrollment(r) if r else None


async def insert_enrollment(
    conn: Connection, *, id: UUID, program: str, customer_id: UUID, status: str, on: date,
    reason: str | None, added_by: UUID | None, enrolled_on: date | None,
) -> None:
    await conn.execute(
        "INSERT INTO enrollments (id, program, customer_id, original_customer_id, status,"
        " status_on, status_reason, added_by, enrolled_on)"
        " VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8)",
        id, program, customer_id, status, on, reason, added_by, enrolled_on,
    )


async def get_enrollment(
    conn: Connection, id: UUID, *, program: str | None = None, for_update: bool = False
) -> Enrollment | None:
    sql = _ENROLLMENT + " WHERE e.id = $1 AND ($2::text IS NULL OR e.program = $2)"
    r = await conn.fetchrow(sql + (" FOR UPDATE OF e" if for_update else ""), id, program)
    return _enrollment(r) if r else None


async def set_status(
    conn: Connection, id: UUID, *, status: str, on: date, reason: str | None,
    note: str | None = None,
) -> None:
    """A new status; entering ``enrolled`` or ``exited`` also sets that date (and exit reason)."""
    await conn.execute(
        "UPDATE enrollments SET status = $2, status_on = $3, status_reason = $4,"
        " enrolled_on = CASE WHEN $2 = 'enrolled' THEN $3 ELSE enrolled_on END,"
        " exited_on = CASE WHEN $2 = 'exited' THEN $3 ELSE exited_on END,"
        " exit_reason = CASE WHEN $2 = 'exited' THEN $4 ELSE exit_reason END,"
        " exit_note = CASE WHEN $2 = 'exited' THEN $5 ELSE exit_note END,"
        " updated_at = now() WHERE id = $1",
        id, status, on, reason, note,
    )


async def set_enrolled_on(conn: Connection, id: UUID, day: date) -> None:
    await conn.execute(
        "UPDATE enrollments SET enrolled_on = $2,"
        " status_on = CASE WHEN status = 'enrolled' THEN $2 ELSE status_on END,"
        " updated_at = now() WHERE id = $1", id, day,
    )


async def list_enrollments(
    conn: Connection, program: str, *, status: str | None,
    after: tuple[datetime, UUID] | None, limit: int,
) -> list[Enrollment]:
    rows = await conn.fetch(
        _ENROLLMENT + " WHERE e.program = $1 AND ($2::text IS NULL OR e.status = $2)"
        " AND ($3::timestamptz IS NULL OR (e.created_at, e.id) > ($3, $4::uuid))"
        " ORDER BY e.created_at, e.id LIMIT $5",
        program, status, after[0] if after else None, after[1] if after else None, limit,
    )
    return [_enrollment(r) for r in rows]


async def customer_enrollments(
    conn: Connection, customer_id: UUID, after: tuple[datetime, UUID] | None, limit: int
) -> list[Enrollment]:
    rows = await conn.fetch(
        _ENROLLMENT + " WHERE e.customer_id = $1"
        " AND ($2::timestamptz IS NULL OR (e.created_at, e.id) > ($2, $3::uuid))"
        " ORDER BY e.created_at, e.id LIMIT $4",
        customer_id, after[0] if after else None, after[1] if after else None, limit,
    )
    return [_enrollment(r) for r in rows]


@dataclass(frozen=True)
class Move:
    enrollment_id: UUID
    from_: UUID
    to: UUID


async def rehome_enrollments(conn: Connection, account: UUID) -> list[Move]:
    """After ``account`` was merged into another or unmerged: every enrollment made for it,
    or for an account merged (at any depth) into it, goes to the account its maker is
    part of now (``merged_into`` followed to its end). Merges chain (A into B, B into C)
    and their events may arrive in any order; this gives the same homes either way."""
    rows = await conn.fetch(
        """WITH RECURSIVE tree (id) AS (
               SELECT $1::uuid
               UNION
               SELECT c.id FROM customers c JOIN tree ON c.merged_into = tree.id
           ), chain (start, cur, depth) AS (
               SELECT id, id, 0 FROM tree
               UNION ALL
               SELECT chain.start, c.merged_into, chain.depth + 1
               FROM chain JOIN customers c ON c.id = chain.cur
               WHERE c.merged_into IS NOT NULL AND chain.depth < 64
           ), home AS (
               SELECT DISTINCT ON (start) start, cur FROM chain ORDER BY start, depth DESC
           )
           UPDATE enrollments e SET customer_id = home.cur, updated_at = now()
           FROM home, enrollments old
           WHERE e.original_customer_id = home.start AND e.customer_id <> home.cur
             AND old.id = e.id
           RETURNING e.id, old.customer_id AS was, e.customer_id AS now""",
        account,
    )
    return [Move(r["id"], r["was"], r["now"]) for r in rows]


# -- applications --------------------------------------------------------------------------


async def insert_application(
    conn: Connection, *, id: UUID, program: str, customer_id: UUID, enrollment_id: UUID,
    questions_version: int, answers: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO applications (id, program, customer_id, enrollment_id, questions_version,"
        " answers) VALUES ($1, $2, $3, $4, $5, $6)",
        id, program, customer_id, enrollment_id, questions_version, answers,
    )


async def applications_for(conn: Connection, enrollment_id: UUID) -> list[Application]:
    rows = await conn.fetch(
        "SELECT id, program, customer_id, enrollment_id, questions_version, answers,"
        " submitted_at FROM applications WHERE enrollment_id = $1 ORDER BY submitted_at",
        enrollment_id,
    )
    return [Application(r["id"], r["program"], r["customer_id"], r["enrollment_id"],
                        r["questions_version"], r["answers"], r["submitted_at"]) for r in rows]


# -- history ----------------------------------------------------------------------------------


async def add_history(
    conn: Connection, enrollment_id: UUID, *, actor_id: UUID | None, action: str,
    changes: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO enrollment_history (enrollment_id, actor_id, action, changes)"
        " VALUES ($1, $2, $3, $4)", enrollment_id, actor_id, action, changes,
    )


async def add_history_many(
    conn: Connection, enrollment_ids: list[UUID], *, action: str, changes: dict[str, Any]
) -> None:
    await conn.executemany(
        "INSERT INTO enrollment_history (enrollment_id, action, changes) VALUES ($1, $2, $3)",
        [(i, action, changes) for i in enrollment_ids],
    )


async def history(conn: Connection, enrollment_id: UUID) -> list[HistoryEntry]:
    rows = await conn.fetch(
        "SELECT at, actor_id, action, changes FROM enrollment_history"
        " WHERE enrollment_id = $1 ORDER BY id", enrollment_id,
    )
    return [HistoryEntry(r["at"], r["actor_id"], r["action"], r["changes"]) for r in rows]


# -- Add Customer idempotency -------------------------------------------------------------


# an Add Customer submit under a staff member's Idempotency-Key: 'matched' once its
# candidates are settled (committed before identity makes the account), then 'done'
INTAKE = IdempotencyStore(
    "intake_requests", kept=("account_id", "account_created", "username", "enrollment_id"),
    started="matched")


async def get_intake_request(
    conn: Connection, staff_id: UUID, key: str, *, for_update: bool = False
) -> IntakeRequest | None:
    r = await INTAKE.get(conn, staff_id, key, for_update=for_update)
    if r is None:
        return None
    v = r.values
    return IntakeRequest(staff_id, key, r.request_hash, r.state, v["account_id"],
                         v["account_created"], v["username"], v["enrollment_id"])


async def start_intake_request(
    conn: Connection, staff_id: UUID, key: str, request_hash: bytes
) -> bool:
    """True when this call recorded it (False: another submit with the key came first)."""
    return await INTAKE.start(conn, staff_id, key, request_hash)


async def drop_intake_request(conn: Connection, staff_id: UUID, key: str) -> None:
    """Identity refused the account: the submit ended with nothing made, the key is free."""
    await INTAKE.drop(conn, staff_id, key)


async def finish_intake_request(
    conn: Connection, staff_id: UUID, key: str, *, account_id: UUID, account_created: bool,
    username: str | None, enrollment_id: UUID, request_hash: bytes,
) -> None:
    await INTAKE.finish(conn, staff_id, key, request_hash, {
        "account_id": account_id, "account_created": account_created, "username": username,
        "enrollment_id": enrollment_id})
