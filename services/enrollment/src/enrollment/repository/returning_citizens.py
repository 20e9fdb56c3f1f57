"""SQL: Returning Citizens enrollments (the Add Customer facts), offenses, the list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from enrollment.domain.records import ReturningCitizen
from shared.servicekit.db import Connection

_COLUMNS = (
    "r.enrollment_id, e.customer_id, e.status, e.exited_on, r.idoc_number, r.first_name,"
    " r.last_name, r.date_of_birth, r.institution, r.counties, r.msr_date, r.msr_county,"
    " r.enrollment_date, r.added_by, r.created_at, r.updated_at, c.username"
)
_FROM = (
    " FROM returning_citizens r JOIN enrollments e ON e.id = r.enrollment_id"
    " LEFT JOIN customers c ON c.id = e.customer_id"
)


def _rc(r: asyncpg.Record) -> ReturningCitizen:
    return ReturningCitizen(
        enrollment_id=r["enrollment_id"], customer_id=r["customer_id"], status=r["status"],
        idoc_number=r["idoc_number"], first_name=r["first_name"], last_name=r["last_name"],
        date_of_birth=r["date_of_birth"], institution=r["institution"],
        counties=tuple(r["counties"]), msr_date=r["msr_date"], msr_county=r["msr_county"],
        enrollment_date=r["enrollment_date"], added_by=r["added_by"],
        created_at=r["created_at"], updated_at=r["updated_at"], username=r["username"],
        exited_on=r["exited_on"],
    )


async def insert(
    conn: Connection, *, enrollment_id: UUID, idoc_number: str, first_name: str,
    last_name: str, date_of_birth: date, institution: str, counties: Sequence[str],
    msr_date: date, msr_county: str | None, enrollment_date: date, added_by: UUID,
) -> None:
    """Raises asyncpg.UniqueViolationError when the IDOC number has an open enrollment."""
    await conn.execute(
        "INSERT INTO returning_citizens (enrollment_id, idoc_number, first_name, last_name,"
        " date_of_birth, institution, counties, msr_date, msr_county, enrollment_date, added_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        enrollment_id, idoc_number, first_name, last_name, date_of_birth, institution,
        list(counties), msr_date, msr_county, enrollment_date, added_by,
    )


async def set_offenses(conn: Connection, enrollment_id: UUID, offenses: Sequence[str]) -> None:
    await conn.execute(
        "DELETE FROM returning_citizen_offenses WHERE enrollment_id = $1", enrollment_id)
    await conn.executemany(
        "INSERT INTO returning_citizen_offenses (enrollment_id, offense, position)"
        " VALUES ($1, $2, $3)", [(enrollment_id, o, i) for i, o in enumerate(offenses)],
    )


async def add_offenses(conn: Connection, enrollment_id: UUID, offenses: Sequence[str]) -> None:
    """The offenses of a new record."""
    if offenses:
        await conn.executemany(
            "INSERT INTO returning_citizen_offenses (enrollment_id, offense, position)"
            " VALUES ($1, $2, $3)", [(enrollment_id, o, i) for i, o in enumerate(offenses)],
        )


async def offenses(conn: Connection, enrollment_id: UUID) -> tuple[str, ...]:
    rows = await conn.fetch(
        "SELECT offense FROM returning_citizen_offenses WHERE enrollment_id = $1"
        " ORDER BY position", enrollment_id,
    )
    return tuple(r["offense"] for r in rows)


async def get(
    conn: Connection, enrollment_id: UUID, *, for_update: bool = False
) -> ReturningCitizen | None:
    sql = f"SELECT {_COLUMNS}{_FROM} WHERE r.enrollment_id = $1"
    r = await conn.fetchrow(sql + (" FOR UPDATE OF r, e" if for_update else ""), enrollment_id)
    return _rc(r) if r else None


async def by_idoc(conn: Connection, idoc_number: str, limit: int = 5) -> list[ReturningCitizen]:
    """Enrollments with this IDOC number: the open one first, then the newest."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS}{_FROM} WHERE r.idoc_number = $1"
        " ORDER BY r.open DESC, r.created_at DESC LIMIT $2", idoc_number, limit,
    )
    return [_rc(r) for r in rows]


async def open_idoc_owner(conn: Connection, idoc_number: str) -> UUID | None:
    value: UUID | None = await conn.fetchval(
        "SELECT enrollment_id FROM returning_citizens WHERE idoc_number = $1 AND open",
        idoc_number,
    )
    return value


async def claim_idoc(conn: Connection, idoc_number: str, token: UUID, *,
                     seconds: float) -> bool:
    """Claim the IDOC number for ``seconds`` (True), unless a live claim holds it (False);
    an expired claim is taken over."""
    return bool(await conn.fetchval(
        """INSERT INTO idoc_claims (idoc_number, token, expires_at)
           VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))
           ON CONFLICT (idoc_number) DO UPDATE
               SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
               WHERE idoc_claims.expires_at < clock_timestamp()
           RETURNING true""", idoc_number, token, float(seconds)))


async def release_idoc(conn: Connection, idoc_number: str, token: UUID) -> None:
    await conn.execute("DELETE FROM idoc_claims WHERE idoc_number = $1 AND token = $2",
                       idoc_number, token)


_UPDATABLE = ("institution", "idoc_number", "counties", "msr_date", "msr_county",
              "enrollment_date")


async def update(conn: Connection, enrollment_id: UUID, changes: dict[str, Any]) -> None:
    """The changed facts (column names from a fixed list); offenses go through set_offenses."""
    columns = [c for c in _UPDATABLE if c in changes]
    if not columns:
        return
    values = [list(changes[c]) if c == "counties" else changes[c] for c in columns]
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=2))
    await conn.execute(
        f"UPDATE returning_citizens SET {sets}, updated_at = now()"  # noqa: S608
        " WHERE enrollment_id = $1", enrollment_id, *values,
    )


async def close(conn: Connection, enrollment_id: UUID) -> None:
    """The enrollment was exited: its IDOC number may be enrolled again."""
    await conn.execute(
        "UPDATE returning_citizens SET open = false, updated_at = now()"
        " WHERE enrollment_id = $1", enrollment_id,
    )


# -- the list ---------------------------------------------------------------------------

# sort name -> the key columns and their types (the enrollment id breaks ties)
SORTS: dict[str, tuple[tuple[str, str], ...]] = {
    "last_name": (("lower(r.last_name)", "text"), ("lower(r.first_name)", "text"),
                  ("r.enrollment_id", "uuid")),
    "enrollment_date": (("r.enrollment_date", "date"), ("r.enrollment_id", "uuid")),
    "msr_date": (("r.msr_date", "date"), ("r.enrollment_id", "uuid")),
    "idoc_number": (("r.idoc_number", "text"), ("r.enrollment_id", "uuid")),
    "created": (("r.created_at", "timestamptz"), ("r.enrollment_id", "uuid")),
}


@dataclass(frozen=True)
class ListFilter:
    institution: str | None = None
    msr_county: str | None = None
    msr_from: date | None = None
    msr_to: date | None = None
    enrolled_from: date | None = None
    enrolled_to: date | None = None
    idoc_number: str | None = None
    name_prefix: str | None = None  # lower case, LIKE wildcards escaped
    status: str | None = None


def sort_key(rc: ReturningCitizen, sort: str) -> list[Any]:
    """The cursor values of a row for ``sort`` (matching SORTS)."""
    by: dict[str, list[Any]] = {
        "last_name": [rc.last_name.lower(), rc.first_name.lower()],
        "enrollment_date": [rc.enrollment_date.isoformat()],
        "msr_date": [rc.msr_date.isoformat()],
        "idoc_number": [rc.idoc_number],
        "created": [rc.created_at.isoformat()],
    }
    return [*by[sort], str(rc.enrollment_id)]


_PARSE: dict[str, Any] = {
    "text": str, "uuid": UUID, "date": date.fromisoformat,
    "timestamptz": datetime.fromisoformat,
}


def parse_key(sort: str, values: Sequence[Any]) -> list[Any]:
    """A cursor's values as the column types of ``sort``; ValueError when they do not fit."""
    keys = SORTS[sort]
    if len(values) != len(keys) or not all(isinstance(v, str) for v in values):
        raise ValueError("not a key of this sort")
    try:
        return [_PARSE[typ](v) for (_, typ), v in zip(keys, values, strict=True)]
    except (TypeError, ValueError) as exc:
        raise ValueError("not a key of this sort") from exc


async def list_page(
    conn: Connection, f: ListFilter, *, sort: str, descending: bool,
    after: Sequence[Any] | None, limit: int,
) -> list[ReturningCitizen]:
    keys = SORTS[sort]
    params: list[Any] = [
        f.institution, f.msr_county, f.msr_from, f.msr_to, f.enrolled_from, f.enrolled_to,
        f.idoc_number, f.name_prefix, f.status,
    ]
    where = (
        " WHERE ($1::text IS NULL OR r.institution = $1)"
        " AND ($2::text IS NULL OR r.msr_county = $2)"
        " AND ($3::date IS NULL OR r.msr_date >= $3) AND ($4::date IS NULL OR r.msr_date <= $4)"
        " AND ($5::date IS NULL OR r.enrollment_date >= $5)"
        " AND ($6::date IS NULL OR r.enrollment_date <= $6)"
        " AND ($7::text IS NULL OR r.idoc_number = $7)"
        " AND ($8::text IS NULL OR lower(r.last_name) LIKE $8 OR lower(r.first_name) LIKE $8"
        "      OR lower(r.first_name || ' ' || r.last_name) LIKE $8)"
        " AND ($9::text IS NULL OR e.status = $9)"
    )
    columns = ", ".join(expr for expr, _ in keys)
    if after is not None:
        marks = ", ".join(
            f"${len(params) + i + 1}::{typ}" for i, (_, typ) in enumerate(keys))
        where += f" AND ({columns}) {'<' if descending else '>'} ({marks})"
        params += list(after)
    direction = " DESC" if descending else ""
    order = ", ".join(f"{expr}{direction}" for expr, _ in keys)
    params.append(limit)
    sql = f"SELECT {_COLUMNS}{_FROM}{where} ORDER BY {order} LIMIT ${len(params)}"
    return [_rc(r) for r in await conn.fetch(sql, *params)]
