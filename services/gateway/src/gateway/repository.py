"""The gateway's tables: page sessions and Add Customer forms between their steps."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.servicekit.db import Connection


async def create_session(
    conn: Connection, *, session_id: uuid.UUID, cookie_hash: bytes, account_id: uuid.UUID,
    kind: str, username: str, display_name: str, roles: list[str],
    password_change_required: bool, access_sealed: bytes, refresh_sealed: bytes | None,
    access_expires_at: datetime, csrf_token: str, notice: str | None,
) -> None:
    await conn.execute(
        "INSERT INTO sessions (id, cookie_hash, account_id, kind, username, display_name,"
        " roles, password_change_required, access_sealed, refresh_sealed, access_expires_at,"
        " csrf_token, notice) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)",
        session_id, cookie_hash, account_id, kind, username, display_name, roles,
        password_change_required, access_sealed, refresh_sealed, access_expires_at,
        csrf_token, notice,
    )


async def open_session_by_cookie(
    conn: Connection, cookie_hash: bytes, idle_after: datetime
) -> Any:
    """The session the cookie names, while it is open and was used after ``idle_after``;
    its last use is written at most once a minute (not a row write per page)."""
    return await conn.fetchrow(
        "WITH s AS (SELECT * FROM sessions WHERE cookie_hash = $1 AND ended_at IS NULL"
        " AND last_seen_at > $2),"
        " touched AS (UPDATE sessions SET last_seen_at = now() FROM s WHERE sessions.id = s.id"
        " AND s.last_seen_at < now() - interval '1 minute')"
        " SELECT * FROM s",
        cookie_hash, idle_after,
    )


async def store_tokens(
    conn: Connection, session_id: uuid.UUID, access_sealed: bytes,
    refresh_sealed: bytes | None, access_expires_at: datetime,
) -> None:
    await conn.execute(
        "UPDATE sessions SET access_sealed = $2, refresh_sealed = $3, access_expires_at = $4"
        " WHERE id = $1", session_id, access_sealed, refresh_sealed, access_expires_at,
    )


async def take_notice(conn: Connection, session_id: uuid.UUID) -> str | None:
    notice: str | None = await conn.fetchval(
        "UPDATE sessions s SET notice = NULL FROM (SELECT notice FROM sessions WHERE id = $1"
        " FOR UPDATE) old WHERE s.id = $1 RETURNING old.notice", session_id,
    )
    return notice


async def end_session(conn: Connection, session_id: uuid.UUID) -> Any:
    """Ends it and drops its tokens; the row (who, when) stays. Returns the row as it was."""
    return await conn.fetchrow(
        "UPDATE sessions s SET ended_at = now(), access_sealed = '', refresh_sealed = NULL"
        " FROM (SELECT refresh_sealed FROM sessions WHERE id = $1 FOR UPDATE) old"
        " WHERE s.id = $1 AND s.ended_at IS NULL RETURNING old.refresh_sealed", session_id,
    )


async def put_intake(
    conn: Connection, intake_id: uuid.UUID, session_id: uuid.UUID, sealed: bytes
) -> None:
    await conn.execute(
        "INSERT INTO intakes (id, session_id, form_sealed) VALUES ($1, $2, $3)",
        intake_id, session_id, sealed,
    )


async def get_intake(conn: Connection, intake_id: uuid.UUID, session_id: uuid.UUID) -> Any:
    return await conn.fetchval(
        "SELECT form_sealed FROM intakes WHERE id = $1 AND session_id = $2",
        intake_id, session_id,
    )


async def drop_intake(conn: Connection, intake_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM intakes WHERE id = $1", intake_id)


async def forget_old(
    conn: Connection, *, sessions_before: datetime, intakes_before: datetime
) -> None:
    """Intakes left half-way, and sessions' rows unused since ``sessions_before``."""
    await conn.execute("DELETE FROM intakes WHERE created_at < $1", intakes_before)
    await conn.execute("DELETE FROM sessions WHERE coalesce(ended_at, last_seen_at) < $1",
                       sessions_before)
