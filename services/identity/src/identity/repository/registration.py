"""Held self-registrations (the only SQL of them)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from shared.servicekit.db import Connection


@dataclass(frozen=True)
class HeldRegistration:
    id: int
    account_id: uuid.UUID
    reason: str
    score: float | None
    evidence: Any
    username: str
    first_name: str
    last_name: str
    date_of_birth: date | None
    email: str | None
    status: str
    found_at: datetime


def _held(r: asyncpg.Record) -> HeldRegistration:
    evidence = r["evidence"]
    return HeldRegistration(
        id=r["id"], account_id=r["account_id"], reason=r["reason"], score=r["score"],
        evidence=json.loads(evidence) if isinstance(evidence, str) else evidence,
        username=r["username"], first_name=r["first_name"], last_name=r["last_name"],
        date_of_birth=r["date_of_birth"], email=r["email"], status=r["status"],
        found_at=r["found_at"])


_COLUMNS = ("id, account_id, reason, score, evidence::text AS evidence, username, first_name,"
            " last_name, date_of_birth, email, status, found_at")


async def hold(
    conn: Connection, *, account_id: uuid.UUID, reason: str, score: float | None,
    evidence: list[dict[str, Any]], username: str, first_name: str, last_name: str,
    date_of_birth: date | None, email: str | None,
) -> int:
    return int(await conn.fetchval(
        "INSERT INTO held_registrations (account_id, reason, score, evidence, username,"
        " first_name, last_name, date_of_birth, email)"
        " VALUES ($1, $2, $3, $4::text::jsonb, $5, $6, $7, $8, $9) RETURNING id",
        account_id, reason, score, json.dumps(evidence), username, first_name, last_name,
        date_of_birth, email))


async def open_held(conn: Connection, *, limit: int, after: int | None) -> list[HeldRegistration]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM held_registrations"  # noqa: S608 - constant columns
        " WHERE status = 'open' AND id > $1 ORDER BY id LIMIT $2",
        after or 0, limit)
    return [_held(r) for r in rows]


async def dismiss_held(conn: Connection, held_id: int, staff_id: uuid.UUID) -> str | None:
    """The status it had (None: no such attempt); set to dismissed when it was open."""
    status = await conn.fetchval(
        "SELECT status FROM held_registrations WHERE id = $1 FOR UPDATE", held_id)
    if status == "open":
        await conn.execute(
            "UPDATE held_registrations SET status = 'dismissed', resolved_by = $2,"
            " resolved_at = now() WHERE id = $1", held_id, staff_id)
    return status  # type: ignore[no-any-return]


async def username_taken(conn: Connection, username: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT true FROM usernames WHERE username_lower = lower($1)", username))
