"""Messages and their recipients, fixed at send time in the chunks the events carry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.servicekit.db import Connection

_ONE_GROUP = """
    WITH ins AS (
        INSERT INTO message_chunks (message_id, chunk_index, recipient_ids)
        SELECT $1, k, array_agg(customer_id) FROM (
            SELECT customer_id, (row_number() OVER () - 1) / $4 AS k FROM (
                SELECT customer_id FROM memberships
                WHERE group_id = $2 AND ($3::uuid[] IS NULL OR customer_id = ANY($3::uuid[]))
                ORDER BY customer_id) s) n
        GROUP BY k
        RETURNING cardinality(recipient_ids) AS c)
    SELECT coalesce(sum(c), 0) AS total FROM ins
"""

_SEVERAL_GROUPS = """
    WITH ins AS (
        INSERT INTO message_chunks (message_id, chunk_index, recipient_ids)
        SELECT $1, k, array_agg(customer_id) FROM (
            SELECT customer_id, (row_number() OVER () - 1) / $4 AS k FROM (
                SELECT DISTINCT customer_id FROM memberships
                WHERE group_id = ANY($2::uuid[])
                  AND ($3::uuid[] IS NULL OR customer_id = ANY($3::uuid[]))
                ORDER BY customer_id) s) n
        GROUP BY k
        RETURNING cardinality(recipient_ids) AS c)
    SELECT coalesce(sum(c), 0) AS total FROM ins
"""


async def fix_recipients(conn: Connection, *, message_id: UUID, groups: Sequence[UUID],
                         only: Sequence[UUID] | None, chunk_size: int) -> int:
    """Every member of ``groups`` once (narrowed to ``only``), written as chunks of
    ``chunk_size`` ids in one statement; the number of recipients. One group streams
    from the primary key in order (no sort, no de-duplication: it is unique there)."""
    several = len(groups) > 1
    row = await conn.fetchrow(
        _SEVERAL_GROUPS if several else _ONE_GROUP, message_id,
        list(groups) if several else groups[0], None if only is None else list(only),
        chunk_size)
    assert row is not None
    return int(row["total"])


async def insert_message(conn: Connection, *, id: UUID, group_id: UUID | None,
                         customer_id: UUID | None, staff_id: UUID, subject: str, body: str,
                         include_subgroups: bool, recipients: int, chunk_count: int,
                         now: datetime) -> None:
    await conn.execute(
        "INSERT INTO messages (id, group_id, customer_id, staff_id, subject, body,"
        " include_subgroups, recipients, chunk_count, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        id, group_id, customer_id, staff_id, subject, body, include_subgroups, recipients,
        chunk_count, now)


async def claim_chunks(conn: Connection, limit: int) -> list[asyncpg.Record]:
    """Chunks not yet turned into events, locked for this transaction."""
    return await conn.fetch(
        "SELECT c.message_id, c.chunk_index, c.recipient_ids, m.group_id, m.staff_id,"
        " m.subject, m.body, m.chunk_count FROM message_chunks c"
        " JOIN messages m ON m.id = c.message_id WHERE c.emitted_at IS NULL"
        " ORDER BY c.message_id, c.chunk_index LIMIT $1 FOR UPDATE OF c SKIP LOCKED", limit)


async def mark_emitted(conn: Connection, keys: Sequence[tuple[UUID, int]], now: datetime
                       ) -> None:
    await conn.executemany(
        "UPDATE message_chunks SET emitted_at = $3 WHERE message_id = $1 AND chunk_index = $2",
        [(m, i, now) for m, i in keys])
