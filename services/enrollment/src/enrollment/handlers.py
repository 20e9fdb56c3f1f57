"""Events the enrollment service consumes: event type -> handler.

Staff are known from identity's staff events (their status and roles), and
customers from its account events; a merge moves the merged account's
enrollments to the survivor, an unmerge moves back the ones made for it.
The consumer subscribes to exactly these types' topics.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import structlog

from enrollment.repository import enrollments as enr
from enrollment.repository import programs as repo
from enrollment.service import Context
from shared.schemas.envelope import Envelope
from shared.schemas.identity import (
    CustomerAccountCreated,
    CustomerAccountsMerged,
    CustomerAccountsUnmerged,
    CustomerAccountUpdated,
    StaffAccountCreated,
    StaffAccountUpdated,
)
from shared.servicekit.consumer import Subscriptions
from shared.servicekit.db import Connection

log = structlog.get_logger(__name__)


async def on_staff(
    conn: Connection, ctx: Context, event: StaffAccountCreated | StaffAccountUpdated,
    envelope: Envelope,
) -> None:
    await repo.upsert_staff(
        conn, id=event.staff_id, username=event.username, name=event.name, email=event.email,
        roles=event.roles, status=event.status, changed_at=envelope.occurred_at)


async def on_customer_created(
    conn: Connection, ctx: Context, event: CustomerAccountCreated, envelope: Envelope
) -> None:
    await repo.upsert_customer(
        conn, id=event.account_id, username=event.username, first_name=event.first_name,
        last_name=event.last_name, email=event.email, changed_at=envelope.occurred_at)


async def on_customer_updated(
    conn: Connection, ctx: Context, event: CustomerAccountUpdated, envelope: Envelope
) -> None:
    changes: dict[str, Any] = {
        k: getattr(event, k) for k in ("username", "first_name", "last_name", "email", "status")
        if getattr(event, k) is not None
    }
    if event.email_removed:
        changes["email"] = None
    await repo.update_customer(conn, event.account_id, changes)


async def on_merged(
    conn: Connection, ctx: Context, event: CustomerAccountsMerged, envelope: Envelope
) -> None:
    await repo.set_merged_into(conn, event.merged_id, event.survivor_id)
    moved = await enr.move_enrollments(conn, from_=event.merged_id, to=event.survivor_id)
    await _record_moves(conn, moved, "merge", from_=("merged_id", event.merged_id),
                        to=event.survivor_id, by=event.by, envelope=envelope)
    log.info("accounts_merged", survivor_id=str(event.survivor_id), moved=len(moved))


async def on_unmerged(
    conn: Connection, ctx: Context, event: CustomerAccountsUnmerged, envelope: Envelope
) -> None:
    await repo.set_merged_into(conn, event.merged_id, None)
    moved = await enr.move_back_enrollments(conn, survivor=event.survivor_id,
                                            merged=event.merged_id)
    await _record_moves(conn, moved, "unmerge", from_=("survivor_id", event.survivor_id),
                        to=event.merged_id, by=event.by, envelope=envelope)


async def _record_moves(
    conn: Connection, moved: list[UUID], kind: str, *, from_: tuple[str, UUID], to: UUID,
    by: UUID, envelope: Envelope,
) -> None:
    """History on each enrollment a merge or an unmerge moved, and one audit row."""
    if not moved:
        return
    role, source = from_
    await enr.add_history_many(conn, moved, action="moved", changes={
        "customer_id": {"from": str(source), "to": str(to)}, "why": f"accounts {kind}d"})
    await repo.audit(conn, actor_id=by, actor_kind="staff",
                     action=f"enrollment.moved_by_{kind}", customer_id=to,
                     details={role: str(source), "enrollment_ids": [str(m) for m in moved],
                              "event_id": str(envelope.event_id)})


SUBSCRIPTIONS: Subscriptions = {
    StaffAccountCreated: on_staff,
    StaffAccountUpdated: on_staff,
    CustomerAccountCreated: on_customer_created,
    CustomerAccountUpdated: on_customer_updated,
    CustomerAccountsMerged: on_merged,
    CustomerAccountsUnmerged: on_unmerged,
}
