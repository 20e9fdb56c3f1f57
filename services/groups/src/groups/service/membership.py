"""Membership changes every path shares (joining, invitations, IWDS, programs): the rows
and their events, in the caller's transaction. A leaf: it imports no other use case."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from groups.deps import Deps
from groups.repository import groups as repo
from shared.schemas.groups import MemberAdded, MemberRemoved
from shared.servicekit.db import Connection


async def add(conn: Connection, deps: Deps, group: asyncpg.Record,
              customer_ids: Sequence[UUID], source: str, *, by: UUID | None) -> list[UUID]:
    """Members added to ``group`` (events for the new ones)."""
    added = await repo.add_members(conn, group["id"], customer_ids, source,
                                   deps.clock.now(), by)
    if added:
        await deps.outbox.add_many(conn, [MemberAdded(
            group_id=group["id"], kind=group["kind"], customer_id=c, via=source, by=by)
            for c in added])
    return added


async def remove(conn: Connection, deps: Deps, group_id: UUID, customer_id: UUID, *,
                 by: UUID | None) -> int:
    """Out of the group and its subgroups; how many memberships went."""
    removed = await repo.remove_member(conn, group_id, customer_id)
    if removed:
        await deps.outbox.add_many(conn, [MemberRemoved(
            group_id=r["group_id"], kind=r["kind"], customer_id=customer_id,
            via=r["source"], by=by) for r in removed])
    return len(removed)
