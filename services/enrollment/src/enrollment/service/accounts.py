"""Use cases on the staff and customer accounts enrollment knows from identity's
events (called by the handlers, inside the consumer's inbox transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import structlog

from enrollment.repository import enrollments as enr
from enrollment.repository import programs as repo
from shared.schemas.identity import (
    CustomerAccountCreated,
    CustomerAccountsMerged,
    CustomerAccountsUnmerged,
    CustomerAccountUpdated,
    StaffAccountCreated,
    StaffAccountUpdated,
)
from shared.servicekit import audit
from shared.servicekit.db import Connection

log = structlog.get_logger(__name__)


async def record_staff(
    conn: Connection, event: StaffAccountCreated | StaffAccountUpdated, *, at: datetime
) -> None:
    await repo.upsert_staff(
        conn, id=event.staff_id, username=event.username, name=event.name, email=event.email,
        roles=event.roles, status=event.status, changed_at=at)


async def record_customer(conn: Connection, event: CustomerAccountCreated, *, at: datetime
                          ) -> None:
    await repo.upsert_customer(
        conn, id=event.account_id, username=event.username, first_name=event.first_name,
        last_name=event.last_name, email=event.email, changed_at=at)


async def update_customer(conn: Connection, event: CustomerAccountUpdated) -> None:
    changes: dict[str, Any] = {
        k: getattr(event, k) for k in ("username", "first_name", "last_name", "email", "status")
        if getattr(event, k) is not None
    }
    if event.email_removed:
        changes["email"] = None
    await repo.update_customer(conn, event.account_id, changes)


async def merge(conn: Connection, event: CustomerAccountsMerged, *, event_id: UUID) -> None:
    """The merged account's enrollments (and those of accounts merged into it) move to
    the survivor, or to the account the survivor is part of by now."""
    await repo.set_merged_into(conn, event.merged_id, event.survivor_id)
    moved = await enr.rehome_enrollments(conn, event.merged_id)
    await _record_moves(conn, moved, "merge", "merged_id", by=event.by, event_id=event_id)
    log.info("accounts_merged", survivor_id=str(event.survivor_id), moved=len(moved))


async def unmerge(conn: Connection, event: CustomerAccountsUnmerged, *, event_id: UUID) -> None:
    """The enrollments made for the merged account (and for accounts merged into it) move
    back to it, wherever a later merge had taken them."""
    await repo.set_merged_into(conn, event.merged_id, None)
    moved = await enr.rehome_enrollments(conn, event.merged_id)
    await _record_moves(conn, moved, "unmerge", "survivor_id", by=event.by, event_id=event_id)


async def _record_moves(
    conn: Connection, moved: list[enr.Move], kind: str, role: str, *, by: UUID,
    event_id: UUID,
) -> None:
    """History on each enrollment a merge or an unmerge moved, and one audit row for each
    pair of accounts enrollments moved between."""
    groups: dict[tuple[UUID, UUID], list[UUID]] = {}
    for m in moved:
        groups.setdefault((m.from_, m.to), []).append(m.enrollment_id)
    for (source, to), ids in groups.items():
        await enr.add_history_many(conn, ids, action="moved", changes={
            "customer_id": {"from": str(source), "to": str(to)}, "why": f"accounts {kind}d"})
        await audit.record(
            conn, audit.Actor(by, "staff"), f"enrollment.moved_by_{kind}", to,
            {role: str(source), "enrollment_ids": [str(i) for i in ids],
             "event_id": str(event_id)})
