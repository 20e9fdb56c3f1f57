"""SQL: programs and their questions, reference data, staff authorization, the staff
and customers known from identity's events, and the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from enrollment.domain.programs import Question, questions_from_stored
from enrollment.domain.records import Authorization, KnownStaff, Program, ReferenceEntry
from shared.servicekit.db import Connection

# -- programs -------------------------------------------------------------------------

_PROGRAM = (
    "SELECT p.code, p.name, p.description, p.open_for_applications, p.questions_version,"
    " p.updated_at, q.questions FROM programs p"
    " JOIN program_questions q ON q.program = p.code AND q.version = p.questions_version"
)


def _program(r: asyncpg.Record) -> Program:
    return Program(
        code=r["code"], name=r["name"], description=r["description"],
        open_for_applications=r["open_for_applications"],
        questions_version=r["questions_version"],
        questions=questions_from_stored(r["questions"]), updated_at=r["updated_at"],
    )


async def get_program(conn: Connection, code: str) -> Program | None:
    r = await conn.fetchrow(_PROGRAM + " WHERE p.code = $1", code)
    return _program(r) if r else None


async def lock_program(conn: Connection, code: str) -> Program | None:
    found = await conn.fetchval("SELECT code FROM programs WHERE code = $1 FOR UPDATE", code)
    return await get_program(conn, code) if found else None


async def list_programs(conn: Connection, after: str | None, limit: int) -> list[Program]:
    rows = await conn.fetch(
        _PROGRAM + " WHERE ($1::text IS NULL OR p.code > $1) ORDER BY p.code LIMIT $2",
        after, limit,
    )
    return [_program(r) for r in rows]


async def insert_program(
    conn: Connection, code: str, name: str, description: str, open_: bool,
    questions: Sequence[Question], actor: UUID,
) -> None:
    await conn.execute(
        "INSERT INTO programs (code, name, description, open_for_applications)"
        " VALUES ($1, $2, $3, $4)", code, name, description, open_,
    )
    await conn.execute(
        "INSERT INTO program_questions (program, version, questions, created_by)"
        " VALUES ($1, 1, $2, $3)", code, [q.as_dict() for q in questions], actor,
    )


async def update_program(
    conn: Connection, code: str, name: str, description: str, open_: bool,
    questions: Sequence[Question] | None, actor: UUID,
) -> None:
    """Name, description and openness; new questions become the next version."""
    if questions is not None:
        version = await conn.fetchval(
            "UPDATE programs SET questions_version = questions_version + 1 WHERE code = $1"
            " RETURNING questions_version", code,
        )
        await conn.execute(
            "INSERT INTO program_questions (program, version, questions, created_by)"
            " VALUES ($1, $2, $3, $4)", code, version, [q.as_dict() for q in questions], actor,
        )
    await conn.execute(
        "UPDATE programs SET name = $2, description = $3, open_for_applications = $4,"
        " updated_at = now() WHERE code = $1", code, name, description, open_,
    )


# -- reference data -----------------------------------------------------------------------


def _entry(r: asyncpg.Record) -> ReferenceEntry:
    return ReferenceEntry(r["kind"], r["code"], r["name"], r["external_code"],
                          r["retired_at"] is not None)


async def reference_states(
    conn: Connection, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], bool]:
    """(kind, code) -> retired? for each pair that exists."""
    if not pairs:
        return {}
    rows = await conn.fetch(
        "SELECT r.kind, r.code, r.retired_at IS NOT NULL AS retired FROM reference_entries r"
        " JOIN unnest($1::text[], $2::text[]) AS w (kind, code)"
        " ON r.kind = w.kind AND r.code = w.code",
        [k for k, _ in pairs], [c for _, c in pairs],
    )
    return {(r["kind"], r["code"]): r["retired"] for r in rows}


async def reference_names(conn: Connection, pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """"kind:code" -> name, for showing codes on a record or a hand-out."""
    if not pairs:
        return {}
    rows = await conn.fetch(
        "SELECT r.kind, r.code, r.name FROM reference_entries r"
        " JOIN unnest($1::text[], $2::text[]) AS w (kind, code)"
        " ON r.kind = w.kind AND r.code = w.code",
        [k for k, _ in pairs], [c for _, c in pairs],
    )
    return {f"{r['kind']}:{r['code']}": r["name"] for r in rows}


async def list_reference(
    conn: Connection, kind: str, *, include_retired: bool, after: tuple[str, str] | None,
    limit: int,
) -> list[ReferenceEntry]:
    rows = await conn.fetch(
        "SELECT kind, code, name, external_code, retired_at FROM reference_entries"
        " WHERE kind = $1 AND ($2 OR retired_at IS NULL)"
        " AND ($3::text IS NULL OR (lower(name), code) > ($3, $4::text))"
        " ORDER BY lower(name), code LIMIT $5",
        kind, include_retired, after[0] if after else None, after[1] if after else None, limit,
    )
    return [_entry(r) for r in rows]


async def get_reference(conn: Connection, kind: str, code: str) -> ReferenceEntry | None:
    r = await conn.fetchrow(
        "SELECT kind, code, name, external_code, retired_at FROM reference_entries"
        " WHERE kind = $1 AND code = $2 FOR UPDATE", kind, code,
    )
    return _entry(r) if r else None


async def put_reference(
    conn: Connection, kind: str, code: str, name: str, retired: bool, actor: UUID
) -> None:
    await conn.execute(
        "INSERT INTO reference_entries (kind, code, name, retired_at, updated_by)"
        " VALUES ($1, $2, $3, CASE WHEN $4 THEN now() END, $5)"
        " ON CONFLICT (kind, code) DO UPDATE SET name = excluded.name,"
        " retired_at = CASE WHEN $4 THEN coalesce(reference_entries.retired_at, now()) END,"
        " updated_at = now(), updated_by = excluded.updated_by",
        kind, code, name, retired, actor,
    )


# -- staff and authorization ----------------------------------------------------------------


async def upsert_staff(
    conn: Connection, *, id: UUID, username: str, name: str, email: str | None,
    roles: Sequence[str], status: str, changed_at: datetime,
) -> None:
    """Identity's account state; an older event never overwrites a newer one."""
    await conn.execute(
        "INSERT INTO staff (id, username, name, email, roles, status, changed_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (id) DO UPDATE SET username = excluded.username, name = excluded.name,"
        " email = excluded.email, roles = excluded.roles, status = excluded.status,"
        " changed_at = excluded.changed_at WHERE staff.changed_at <= excluded.changed_at",
        id, username, name, email, list(roles), status, changed_at,
    )


async def get_staff(conn: Connection, staff_id: UUID) -> KnownStaff | None:
    r = await conn.fetchrow(
        "SELECT id, username, name, roles, status FROM staff WHERE id = $1", staff_id)
    return KnownStaff(r["id"], r["username"], r["name"], tuple(r["roles"]), r["status"]) \
        if r else None


async def is_authorized(conn: Connection, program: str, staff_id: UUID) -> bool:
    """Granted for the program, and not a staff account identity has disabled."""
    return bool(await conn.fetchval(
        "SELECT true FROM program_staff a LEFT JOIN staff s ON s.id = a.staff_id"
        " WHERE a.program = $1 AND a.staff_id = $2 AND coalesce(s.status, 'active') = 'active'",
        program, staff_id,
    ))


async def grant(conn: Connection, program: str, staff_id: UUID, by: UUID) -> bool:
    """True when newly granted."""
    return bool(await conn.fetchval(
        "INSERT INTO program_staff (program, staff_id, granted_by) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true", program, staff_id, by,
    ))


async def revoke(conn: Connection, program: str, staff_id: UUID) -> bool:
    """True when there was a grant to withdraw."""
    return bool(await conn.fetchval(
        "DELETE FROM program_staff WHERE program = $1 AND staff_id = $2 RETURNING true",
        program, staff_id,
    ))


async def list_authorizations(
    conn: Connection, program: str, after: UUID | None, limit: int
) -> list[Authorization]:
    rows = await conn.fetch(
        "SELECT a.program, a.staff_id, a.granted_by, a.granted_at, s.username, s.name"
        " FROM program_staff a LEFT JOIN staff s ON s.id = a.staff_id"
        " WHERE a.program = $1 AND ($2::uuid IS NULL OR a.staff_id > $2)"
        " ORDER BY a.staff_id LIMIT $3", program, after, limit,
    )
    return [Authorization(r["program"], r["staff_id"], r["granted_by"], r["granted_at"],
                          r["username"], r["name"]) for r in rows]


# -- customers ----------------------------------------------------------------------------


async def upsert_customer(
    conn: Connection, *, id: UUID, username: str, first_name: str | None,
    last_name: str | None, email: str | None, changed_at: datetime,
) -> None:
    """CustomerAccountCreated: identity's account wins over what a use case noted."""
    await conn.execute(
        "INSERT INTO customers (id, username, first_name, last_name, email, changed_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (id) DO UPDATE SET username = excluded.username,"
        " first_name = excluded.first_name, last_name = excluded.last_name,"
        " email = excluded.email, changed_at = excluded.changed_at",
        id, username, first_name, last_name, email, changed_at,
    )


async def note_customer(
    conn: Connection, id: UUID, username: str | None, first_name: str, last_name: str
) -> None:
    """What Add Customer learnt of an account, unless identity's event came first."""
    await conn.execute(
        "INSERT INTO customers (id, username, first_name, last_name, changed_at)"
        " VALUES ($1, $2, $3, $4, '-infinity') ON CONFLICT (id) DO NOTHING",
        id, username, first_name, last_name,
    )


async def update_customer(conn: Connection, id: UUID, changes: dict[str, Any]) -> None:
    """CustomerAccountUpdated: only the fields it carries (names from a fixed list)."""
    columns = [c for c in ("username", "first_name", "last_name", "email", "status")
               if c in changes]
    if not columns:
        return
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=2))
    await conn.execute(
        f"UPDATE customers SET {sets}, changed_at = now() WHERE id = $1",  # noqa: S608
        id, *(changes[c] for c in columns),
    )


async def customer_username(conn: Connection, id: UUID) -> str | None:
    value: str | None = await conn.fetchval("SELECT username FROM customers WHERE id = $1", id)
    return value


async def set_merged_into(conn: Connection, id: UUID, survivor: UUID | None) -> None:
    """The account was merged into ``survivor`` (None: it stands alone again)."""
    await conn.execute(
        "INSERT INTO customers (id, merged_into) VALUES ($1, $2)"
        " ON CONFLICT (id) DO UPDATE SET merged_into = excluded.merged_into, changed_at = now()",
        id, survivor,
    )
