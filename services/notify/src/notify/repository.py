"""Every SQL statement of notify. Functions take the caller's connection and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notify.domain import Message, PlannedDelivery, Recipient
from shared.servicekit.db import Connection

# -- the customer directory ----------------------------------------------------------


async def upsert_customer(
    conn: Connection, customer_id: uuid.UUID, name: str | None, email: str | None,
    status: str, now: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO customers (id, name, email, status, updated_at) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email,"
        " status = EXCLUDED.status, updated_at = EXCLUDED.updated_at",
        customer_id, name, email, status, now,
    )


async def update_customer(
    conn: Connection, customer_id: uuid.UUID, *, name: str | None, email: str | None,
    email_removed: bool, status: str | None, now: datetime,
) -> None:
    """Change the given fields (None: unchanged); an unknown customer is added."""
    await conn.execute(
        "INSERT INTO customers (id, name, email, status, updated_at)"
        " VALUES ($1, $2, CASE WHEN $4 THEN NULL ELSE $3 END, coalesce($5, 'active'), $6)"
        " ON CONFLICT (id) DO UPDATE SET"
        "  name = coalesce($2, customers.name),"
        "  email = CASE WHEN $4 THEN NULL ELSE coalesce($3, customers.email) END,"
        "  status = coalesce($5, customers.status), updated_at = $6",
        customer_id, name, email, email_removed, status, now,
    )


async def set_merged_into(
    conn: Connection, merged_id: uuid.UUID, survivor_id: uuid.UUID | None, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO customers (id, merged_into, updated_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (id) DO UPDATE SET merged_into = $2, updated_at = $3",
        merged_id, survivor_id, now,
    )


async def move_inbox(conn: Connection, from_id: uuid.UUID, to_id: uuid.UUID) -> int:
    result = await conn.execute(
        "UPDATE inbox_items SET customer_id = $2 WHERE customer_id = $1", from_id, to_id)
    return int(result.split()[-1])


async def give_inbox_back(conn: Connection, merged_id: uuid.UUID) -> int:
    """After an unmerge: the merged account's own items return to it."""
    result = await conn.execute(
        "UPDATE inbox_items SET customer_id = original_customer_id"
        " WHERE original_customer_id = $1 AND customer_id <> $1", merged_id)
    return int(result.split()[-1])


async def recipients(conn: Connection, ids: Sequence[uuid.UUID]) -> list[Recipient]:
    """The directory's entry for each id, following merges to the survivor; an id the
    directory does not know yet is a recipient with no address (inbox only)."""
    rows = await conn.fetch(
        """
        WITH RECURSIVE chain AS (
            SELECT r.id AS asked, c.id, c.name, c.email, c.merged_into, 0 AS depth
            FROM unnest($1::uuid[]) AS r(id) LEFT JOIN customers c ON c.id = r.id
          UNION ALL
            SELECT chain.asked, c.id, c.name, c.email, c.merged_into, chain.depth + 1
            FROM chain JOIN customers c ON c.id = chain.merged_into
            WHERE chain.depth < 5
        )
        SELECT DISTINCT ON (asked) asked, id, name, email FROM chain
        WHERE merged_into IS NULL OR depth = 5 OR id IS NULL
        ORDER BY asked, depth DESC
        """,
        list(ids),
    )
    return [Recipient(r["id"] or r["asked"], r["email"], r["name"]) for r in rows]


async def customer_by_email(conn: Connection, email: str) -> Recipient | None:
    row = await conn.fetchrow(
        "SELECT id, name, email FROM customers"
        " WHERE lower(email) = lower($1) AND merged_into IS NULL ORDER BY updated_at DESC LIMIT 1",
        email,
    )
    return Recipient(row["id"], row["email"], row["name"]) if row else None


async def suppressed_among(conn: Connection, addresses: Sequence[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT address FROM suppressions WHERE address = ANY($1::text[])",
        [a.lower() for a in addresses],
    )
    return {r["address"] for r in rows}


async def suppress(conn: Connection, addresses: Sequence[tuple[str, str]], now: datetime) -> None:
    if addresses:
        await conn.execute(
            "INSERT INTO suppressions (address, reason, created_at)"
            " SELECT a, r, $3 FROM unnest($1::text[], $2::text[]) AS t(a, r)"
            " ON CONFLICT (address) DO NOTHING",
            [a.lower() for a, _ in addresses], [r for _, r in addresses], now,
        )


async def lift_suppressions(conn: Connection, addresses: Sequence[str]) -> int:
    result = await conn.execute(
        "DELETE FROM suppressions WHERE address = ANY($1::text[])", [a.lower() for a in addresses])
    return int(result.split()[-1])


# -- messages and deliveries -----------------------------------------------------------


async def insert_message(conn: Connection, m: Message) -> None:
    await conn.execute(
        "INSERT INTO messages (id, kind, sender_id, group_id, subject, body, link, expires_at,"
        " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
        m.id, m.kind, m.sender_id, m.group_id, m.subject, m.body, m.link, m.expires_at,
        m.created_at,
    )


def _message(r: Any) -> Message:
    return Message(r["id"], r["kind"], r["sender_id"], r["group_id"], r["subject"], r["body"],
                   r["created_at"], r["link"], r["expires_at"])


async def get_message(conn: Connection, message_id: uuid.UUID) -> Message | None:
    row = await conn.fetchrow("SELECT * FROM messages WHERE id = $1", message_id)
    return _message(row) if row else None


async def messages(conn: Connection, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Message]:
    rows = await conn.fetch("SELECT * FROM messages WHERE id = ANY($1::uuid[])", list(ids))
    return {r["id"]: _message(r) for r in rows}


@dataclass(frozen=True)
class NewDelivery:
    id: int
    recipient: str
    customer_id: uuid.UUID | None
    channel: str
    status: str


async def insert_deliveries(
    conn: Connection, message_id: uuid.UUID, planned: Sequence[PlannedDelivery], now: datetime
) -> list[NewDelivery]:
    """The planned deliveries that did not exist yet (a redelivered event adds none)."""
    if not planned:
        return []
    rows = await conn.fetch(
        "INSERT INTO deliveries (message_id, recipient, customer_id, channel, address, status,"
        " attempts, next_attempt_at, sent_at, created_at, updated_at)"
        " SELECT $1, p.recipient, p.customer_id, p.channel, p.address, p.status,"
        "  CASE WHEN p.status = 'sent' THEN 1 ELSE 0 END,"
        "  CASE WHEN p.status = 'queued' THEN $6::timestamptz END,"
        "  CASE WHEN p.status = 'sent' THEN $6::timestamptz END, $6, $6"
        " FROM unnest($2::text[], $3::uuid[], $4::text[], $5::text[], $7::text[])"
        "  AS p(recipient, customer_id, channel, address, status)"
        " ON CONFLICT (message_id, recipient, channel) DO NOTHING"
        " RETURNING id, recipient, customer_id, channel, status",
        message_id, [p.recipient for p in planned], [p.customer_id for p in planned],
        [p.channel for p in planned], [p.address for p in planned], now,
        [p.status for p in planned],
    )
    return [NewDelivery(r["id"], r["recipient"], r["customer_id"], r["channel"], r["status"])
            for r in rows]


async def insert_inbox_items(
    conn: Connection, m: Message, customer_ids: Sequence[uuid.UUID], now: datetime
) -> None:
    if customer_ids:
        await conn.copy_records_to_table(
            "inbox_items",
            columns=("id", "customer_id", "original_customer_id", "message_id", "kind",
                     "subject", "body", "received_at"),
            records=[(uuid.uuid4(), c, c, m.id, m.kind, m.subject, m.body, now)
                     for c in customer_ids],
        )


async def status_counts(conn: Connection, message_id: uuid.UUID) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM deliveries WHERE message_id = $1 GROUP BY status",
        message_id,
    )
    return {r["status"]: int(r["n"]) for r in rows}


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    customer_id: uuid.UUID | None
    channel: str
    address: str | None
    status: str
    attempts: int
    last_reply: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


async def list_deliveries(
    conn: Connection, message_id: uuid.UUID, statuses: Sequence[str] | None,
    after_id: int, limit: int,
) -> list[DeliveryRow]:
    rows = await conn.fetch(
        "SELECT id, customer_id, channel, address, status, attempts, last_reply,"
        " next_attempt_at, created_at, updated_at, sent_at FROM deliveries"
        " WHERE message_id = $1 AND ($2::text[] IS NULL OR status = ANY($2::text[]))"
        " AND id > $3 ORDER BY id LIMIT $4",
        message_id, list(statuses) if statuses else None, after_id, limit,
    )
    return [DeliveryRow(**dict(r)) for r in rows]


async def requeue_failed(
    conn: Connection, message_id: uuid.UUID, now: datetime
) -> list[str]:
    """Failed email deliveries of a message back in the queue; returns their addresses."""
    rows = await conn.fetch(
        "UPDATE deliveries SET status = 'queued', attempts = 0, next_attempt_at = $2,"
        " lease_owner = NULL, lease_until = NULL, updated_at = $2"
        " WHERE message_id = $1 AND status = 'failed' AND channel = 'email' RETURNING address",
        message_id, now,
    )
    return [r["address"] for r in rows if r["address"]]


# -- the delivery worker -----------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    message_id: uuid.UUID
    customer_id: uuid.UUID | None
    address: str
    attempts: int
    name: str | None


async def claim_due(
    conn: Connection, now: datetime, owner: str, lease_until: datetime, limit: int
) -> list[Claimed]:
    """Due email deliveries (queued, deferred and due, or 'sending' past their lease),
    leased to ``owner``; each claim counts as an attempt."""
    rows = await conn.fetch(
        """
        WITH due AS (
            (SELECT id FROM deliveries
             WHERE status IN ('queued', 'deferred') AND next_attempt_at <= $1
             ORDER BY next_attempt_at LIMIT $4)
            UNION
            (SELECT id FROM deliveries WHERE status = 'sending' AND lease_until < $1
             ORDER BY lease_until LIMIT $4)
        ), locked AS (
            SELECT d.id FROM deliveries d JOIN due USING (id)
            WHERE d.channel = 'email'
            ORDER BY d.id LIMIT $4
            FOR UPDATE OF d SKIP LOCKED
        )
        UPDATE deliveries d SET status = 'sending', lease_owner = $2, lease_until = $3,
            attempts = d.attempts + 1, updated_at = $1
        FROM locked WHERE d.id = locked.id
          AND (d.status IN ('queued', 'deferred') OR d.lease_until < $1)
        RETURNING d.id, d.message_id, d.customer_id, d.address, d.attempts,
            (SELECT c.name FROM customers c WHERE c.id = d.customer_id) AS name
        """,
        now, owner, lease_until, limit,
    )
    return [Claimed(r["id"], r["message_id"], r["customer_id"], r["address"], r["attempts"],
                    r["name"]) for r in rows]


@dataclass(frozen=True)
class Result:
    id: int
    status: str  # sent, deferred, failed, suppressed
    reply: str
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class Recorded:
    id: int
    message_id: uuid.UUID
    customer_id: uuid.UUID | None
    address: str
    attempts: int
    status: str
    reply: str


async def record_results(
    conn: Connection, results: Sequence[Result], owner: str, now: datetime
) -> list[Recorded]:
    """Write what happened to leased deliveries; one whose lease another worker took
    meanwhile is left alone (that worker writes it)."""
    if not results:
        return []
    rows = await conn.fetch(
        "UPDATE deliveries d SET status = r.status, last_reply = r.reply,"
        " next_attempt_at = r.next_at,"
        " sent_at = CASE WHEN r.status = 'sent' THEN $5::timestamptz ELSE d.sent_at END,"
        " lease_owner = NULL, lease_until = NULL, updated_at = $5"
        " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[])"
        "  AS r(id, status, reply, next_at)"
        " WHERE d.id = r.id AND d.lease_owner = $6 AND d.status = 'sending'"
        " RETURNING d.id, d.message_id, d.customer_id, d.address, d.attempts, d.status,"
        "  d.last_reply",
        [r.id for r in results], [r.status for r in results], [r.reply for r in results],
        [r.next_attempt_at for r in results], now, owner,
    )
    return [Recorded(r["id"], r["message_id"], r["customer_id"], r["address"], r["attempts"],
                     r["status"], r["last_reply"]) for r in rows]


# -- the inbox ----------------------------------------------------------------------


@dataclass(frozen=True)
class InboxItem:
    id: uuid.UUID
    message_id: uuid.UUID
    kind: str
    subject: str
    body: str
    received_at: datetime
    read_at: datetime | None


async def list_inbox(
    conn: Connection, customer_id: uuid.UUID, before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[InboxItem]:
    rows = await conn.fetch(
        "SELECT id, message_id, kind, subject, body, received_at, read_at FROM inbox_items"
        " WHERE customer_id = $1"
        " AND ($2::timestamptz IS NULL OR (received_at, id) < ($2::timestamptz, $3::uuid))"
        " ORDER BY received_at DESC, id DESC LIMIT $4",
        customer_id, before[0] if before else None, before[1] if before else None, limit,
    )
    return [InboxItem(**dict(r)) for r in rows]


async def unread_count(conn: Connection, customer_id: uuid.UUID) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM inbox_items WHERE customer_id = $1 AND read_at IS NULL",
        customer_id))


async def mark_read(
    conn: Connection, item_id: uuid.UUID, customer_id: uuid.UUID, now: datetime
) -> InboxItem | None:
    row = await conn.fetchrow(
        "UPDATE inbox_items SET read_at = coalesce(read_at, $3)"
        " WHERE id = $1 AND customer_id = $2"
        " RETURNING id, message_id, kind, subject, body, received_at, read_at",
        item_id, customer_id, now,
    )
    return InboxItem(**dict(row)) if row else None
