"""The local directory of staff and customers, kept from identity's events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.servicekit.db import Connection


async def upsert_staff(conn: Connection, *, id: UUID, username: str, name: str,
                       has_email: bool, roles: Sequence[str], status: str,
                       changed_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO staff (id, username, name, has_email, roles, status, changed_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username, name = EXCLUDED.name,"
        " has_email = EXCLUDED.has_email, roles = EXCLUDED.roles, status = EXCLUDED.status,"
        " changed_at = EXCLUDED.changed_at WHERE staff.changed_at <= EXCLUDED.changed_at",
        id, username, name, has_email, list(roles), status, changed_at)


async def staff(conn: Connection, staff_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM staff WHERE id = $1", staff_id)


async def upsert_customer(conn: Connection, *, id: UUID, username: str,
                          first_name: str | None, last_name: str | None, email: str | None,
                          created_by: UUID | None, changed_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO customers (id, username, first_name, last_name, email, created_by,"
        " changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (id) DO UPDATE SET username = EXCLUDED.username,"
        " first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,"
        " email = EXCLUDED.email, created_by = EXCLUDED.created_by",
        id, username, first_name, last_name, email, created_by, changed_at)


async def update_customer(conn: Connection, customer_id: UUID, changes: dict[str, Any]
                          ) -> bool:
    """Apply the fields that changed; False when the customer is not known yet."""
    allowed = ("username", "first_name", "last_name", "email", "status")
    cols = [k for k in changes if k in allowed]
    sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(cols)) or "id = id"
    done = await conn.execute(f"UPDATE customers SET {sets} WHERE id = $1",  # noqa: S608
                              customer_id, *(changes[c] for c in cols))
    return bool(done != "UPDATE 0")


async def customer(conn: Connection, customer_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM customers WHERE id = $1", customer_id)


async def customer_by_email(conn: Connection, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM customers WHERE email = $1 AND merged_into IS NULL"
        " ORDER BY changed_at LIMIT 1", email)


async def known_customers(conn: Connection, ids: Sequence[UUID]) -> set[UUID]:
    rows = await conn.fetch("SELECT id FROM customers WHERE id = ANY($1::uuid[])", list(ids))
    return {r["id"] for r in rows}


async def set_merged_into(conn: Connection, merged: UUID, survivor: UUID | None) -> None:
    await conn.execute("UPDATE customers SET merged_into = $2 WHERE id = $1", merged, survivor)


async def move_for_merge(conn: Connection, merged: UUID, survivor: UUID) -> int:
    """The merged account's memberships go to the survivor; each is remembered (with
    whether the survivor already had it) so an unmerge can put things back."""
    await conn.execute(
        "INSERT INTO merge_moves (merged_id, survivor_id, group_id, source, since, added_by,"
        " moved) SELECT $1, $2, m.group_id, m.source, m.since, m.added_by, NOT EXISTS ("
        "   SELECT 1 FROM memberships s WHERE s.group_id = m.group_id"
        "   AND s.customer_id = $2)"
        " FROM memberships m WHERE m.customer_id = $1"
        " ON CONFLICT (merged_id, group_id) DO NOTHING", merged, survivor)
    await conn.execute("DELETE FROM memberships WHERE customer_id = $1", merged)
    done = await conn.execute(
        "INSERT INTO memberships (group_id, customer_id, source, since, added_by)"
        " SELECT group_id, $2, source, since, added_by FROM merge_moves"
        " WHERE merged_id = $1 AND survivor_id = $2 AND moved ON CONFLICT DO NOTHING",
        merged, survivor)
    await conn.execute(
        "UPDATE invitations SET customer_id = $2 WHERE customer_id = $1"
        " AND status = 'pending' AND NOT EXISTS (SELECT 1 FROM invitations i"
        "   WHERE i.group_id = invitations.group_id AND i.customer_id = $2"
        "   AND i.status = 'pending')", merged, survivor)
    return int(done.split()[-1])


async def move_back_for_unmerge(conn: Connection, merged: UUID, survivor: UUID) -> int:
    """What a merge moved goes back to the merged account (the survivor keeps what it
    had before the merge)."""
    await conn.execute(
        "DELETE FROM memberships m USING merge_moves mm WHERE mm.merged_id = $1"
        " AND mm.survivor_id = $2 AND mm.moved AND m.group_id = mm.group_id"
        " AND m.customer_id = $2", merged, survivor)
    done = await conn.execute(
        "INSERT INTO memberships (group_id, customer_id, source, since, added_by)"
        " SELECT group_id, $1, source, since, added_by FROM merge_moves"
        " WHERE merged_id = $1 AND survivor_id = $2 ON CONFLICT DO NOTHING",
        merged, survivor)
    await conn.execute("DELETE FROM merge_moves WHERE merged_id = $1 AND survivor_id = $2",
                       merged, survivor)
    return int(done.split()[-1])


async def staff_by_username(conn: Connection, username: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM staff WHERE lower(username) = lower($1) ORDER BY changed_at DESC"
        " LIMIT 1", username)


async def customers_by_login(conn: Connection, *, username: str | None, email: str | None,
                             limit: int = 20) -> list[asyncpg.Record]:
    """Customers (not merged away) with this username (any case) or this email."""
    return await conn.fetch(
        "SELECT * FROM customers WHERE merged_into IS NULL AND"
        " (($1::text IS NOT NULL AND lower(username) = lower($1))"
        "  OR ($2::text IS NOT NULL AND email = $2))"
        " ORDER BY last_name, first_name, id LIMIT $3", username, email, limit)
