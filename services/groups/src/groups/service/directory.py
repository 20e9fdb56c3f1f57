"""The staff and customer directory, from identity's account events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from groups.deps import Deps
from groups.domain import normalize_email
from groups.repository import directory as repo
from shared.schemas.identity import (
    CustomerAccountCreated,
    CustomerAccountsMerged,
    CustomerAccountsUnmerged,
    CustomerAccountUpdated,
    StaffAccountCreated,
    StaffAccountUpdated,
)
from shared.servicekit import audit
from shared.servicekit.audit import Actor
from shared.servicekit.db import Connection


async def staff_changed(conn: Connection, event: StaffAccountCreated | StaffAccountUpdated,
                        at: datetime) -> None:
    await repo.upsert_staff(conn, id=event.staff_id, username=event.username,
                            name=event.name, has_email=event.email is not None,
                            roles=event.roles, status=event.status, changed_at=at)


async def customer_created(conn: Connection, deps: Deps, event: CustomerAccountCreated,
                           at: datetime) -> None:
    await repo.upsert_customer(
        conn, id=event.account_id, username=event.username, first_name=event.first_name,
        last_name=event.last_name,
        email=normalize_email(str(event.email)) if event.email else None,
        created_by=event.created_by, changed_at=at)


async def customer_updated(conn: Connection, deps: Deps, event: CustomerAccountUpdated
                           ) -> None:
    changes: dict[str, Any] = {
        k: getattr(event, k) for k in ("username", "first_name", "last_name", "status")
        if getattr(event, k) is not None}
    if event.email is not None:
        changes["email"] = normalize_email(str(event.email))
    if event.email_removed:
        changes["email"] = None
    await repo.update_customer(conn, event.account_id, changes)


async def merged(conn: Connection, event: CustomerAccountsMerged) -> None:
    await repo.set_merged_into(conn, event.merged_id, event.survivor_id)
    moved = await repo.move_for_merge(conn, event.merged_id, event.survivor_id)
    await audit.record(conn, Actor(event.by, "staff"), "membership.moved_by_merge",
                       event.survivor_id, {"merged_id": event.merged_id, "moved": moved})


async def unmerged(conn: Connection, event: CustomerAccountsUnmerged) -> None:
    await repo.set_merged_into(conn, event.merged_id, None)
    moved = await repo.move_back_for_unmerge(conn, event.merged_id, event.survivor_id)
    await audit.record(conn, Actor(event.by, "staff"), "membership.moved_by_unmerge",
                       event.merged_id, {"survivor_id": event.survivor_id, "moved": moved})


