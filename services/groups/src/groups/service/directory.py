"""The staff and customer directory, from identity's account events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from groups.deps import Deps
from groups.domain import normalize_email
from groups.repository import directory as repo
from groups.service import access
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
from shared.servicekit.errors import NotFound

if TYPE_CHECKING:  # the caller's type only
    from groups.service.common import Caller


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




# -- look-ups for staff pages ------------------------------------------------------------

@dataclass(frozen=True)
class StaffEntry:
    id: UUID
    username: str
    name: str
    status: str


@dataclass(frozen=True)
class CustomerEntry:
    id: UUID
    username: str | None
    first_name: str | None
    last_name: str | None


async def find_staff(conn: Connection, username: str) -> StaffEntry:
    """A staff member by username (any case), active or not; NotFound otherwise."""
    row = await repo.staff_by_username(conn, username.strip())
    if row is None:
        raise NotFound("no staff member has that username")
    return StaffEntry(row["id"], row["username"], row["name"], row["status"])


async def find_customers(conn: Connection, caller: Caller, *, username: str | None,
                         email: str | None) -> list[CustomerEntry]:
    """The customers with this username or email whom the caller reaches (an admin
    reaches all); each one found is audited as a look-up. Empty when none: a staff
    member learns nothing of accounts they do not reach."""
    rows = await repo.customers_by_login(
        conn, username=username.strip() if username else None,
        email=normalize_email(email) if email else None)
    found = []
    for r in rows:
        via = await access.paths(conn, caller.id, r["id"], admin=caller.is_admin)
        if not via:
            continue
        await audit.record(conn, caller.actor, "customer.lookup", r["id"],
                           {"by": "username" if username else "email"})
        found.append(CustomerEntry(r["id"], r["username"], r["first_name"], r["last_name"]))
    return found
