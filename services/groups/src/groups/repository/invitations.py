"""Invitations to groups (to an account or to an email address) and the join throttle."""

# ruff: noqa: S608 - the SQL is built from module constants; values are always $n parameters

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from shared.servicekit.db import Connection

COLS = ("id, group_id, customer_id, email, status, invited_by, created_at, sent_at,"
        " expires_at, responded_at")


async def expire_due(conn: Connection, group_id: UUID, now: datetime) -> None:
    """Pending invitations past their expiry become expired (frees the pending slot)."""
    await conn.execute(
        "UPDATE invitations SET status = 'expired' WHERE group_id = $1"
        " AND status = 'pending' AND expires_at <= $2", group_id, now)


async def pending_for(conn: Connection, group_id: UUID, *, customer_id: UUID | None,
                      email: str | None) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLS} FROM invitations WHERE group_id = $1 AND status = 'pending'"
        " AND (customer_id = $2 OR email = $3) LIMIT 1", group_id, customer_id, email)


async def insert(conn: Connection, *, id: UUID, group_id: UUID, customer_id: UUID | None,
                 email: str | None, invited_by: UUID, now: datetime, expires_at: datetime
                 ) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"INSERT INTO invitations ({COLS}) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $6,"
        f" $7, NULL) RETURNING {COLS}",
        id, group_id, customer_id, email, invited_by, now, expires_at)
    assert row is not None
    return row


async def get(conn: Connection, invitation_id: UUID, *, lock: bool = False
              ) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLS} FROM invitations WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        invitation_id)


async def set_status(conn: Connection, invitation_id: UUID, status: str, now: datetime,
                     accepted_by: UUID | None = None) -> None:
    await conn.execute(
        "UPDATE invitations SET status = $2, responded_at = $3, accepted_by = $4"
        " WHERE id = $1", invitation_id, status, now, accepted_by)


async def resend(conn: Connection, invitation_id: UUID, now: datetime, expires_at: datetime
                 ) -> asyncpg.Record:
    row = await conn.fetchrow(
        "UPDATE invitations SET status = 'pending', sent_at = $2, expires_at = $3"
        f" WHERE id = $1 RETURNING {COLS}", invitation_id, now, expires_at)
    assert row is not None
    return row


async def board(conn: Connection, group_id: UUID, *, status: str | None, now: datetime,
                after: tuple[datetime, UUID] | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT * FROM (SELECT {COLS}, CASE WHEN status = 'pending' AND expires_at <= $2"
        " THEN 'expired' ELSE status END AS shown FROM invitations WHERE group_id = $1) i"
        " WHERE ($3::text IS NULL OR shown = $3)"
        " AND ($4::timestamptz IS NULL OR (created_at, id) > ($4, $5::uuid))"
        " ORDER BY created_at, id LIMIT $6",
        group_id, now, status, after[0] if after else None, after[1] if after else None,
        limit)


async def pending_addressed_to(conn: Connection, customer_id: UUID, email: str | None,
                               now: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT i.id, i.group_id, g.name AS group_name, i.customer_id, i.email, i.status,"
        " i.created_at, i.sent_at, i.expires_at FROM invitations i"
        " JOIN groups g ON g.id = i.group_id"
        " WHERE i.status = 'pending' AND i.expires_at > $3"
        " AND (i.customer_id = $1 OR ($2::text IS NOT NULL AND i.email = $2))"
        " ORDER BY i.created_at, i.id", customer_id, email, now)


# -- the join throttle ---------------------------------------------------------------

async def failures(conn: Connection, *, customer_id: UUID, group_id: UUID | None,
                   since: datetime) -> tuple[list[datetime], list[datetime]]:
    by_customer = await conn.fetch(
        "SELECT at FROM join_failures WHERE customer_id = $1 AND at > $2", customer_id, since)
    by_group = [] if group_id is None else await conn.fetch(
        "SELECT at FROM join_failures WHERE group_id = $1 AND at > $2", group_id, since)
    return [r["at"] for r in by_customer], [r["at"] for r in by_group]


async def record_failure(conn: Connection, customer_id: UUID, group_id: UUID | None,
                         now: datetime) -> None:
    await conn.execute("INSERT INTO join_failures (customer_id, group_id, at)"
                       " VALUES ($1, $2, $3)", customer_id, group_id, now)
    # the throttle looks back 15 minutes: this customer's older rows are of no use
    await conn.execute("DELETE FROM join_failures WHERE customer_id = $1"
                       " AND at < $2::timestamptz - interval '1 day'", customer_id, now)
