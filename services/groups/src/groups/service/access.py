"""Who may see which customer, with the reason: the one rule every service asks."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from groups.domain import ADMIN_PATH, Path
from groups.repository import access as repo
from shared.servicekit import audit
from shared.servicekit.db import Connection
from shared.servicekit.errors import NotFound

if TYPE_CHECKING:  # the caller's type only: this module imports no other use case
    from groups.service.common import Caller


async def paths(conn: Connection, staff_id: UUID, customer_id: UUID, *, admin: bool
                ) -> list[Path]:
    """Every way the staff member reaches the customer (empty: they do not)."""
    found = [Path(r["group_id"], r["kind"], r["name"], r["reason"])
             for r in await repo.customer_paths(conn, customer_id, staff_id)]
    if admin:
        found.append(ADMIN_PATH)
    return found


async def explain(conn: Connection, caller: Caller, customer_id: UUID, *,
                  what: str = "access") -> list[Path]:
    """The paths, audited as a read of the customer; NotFound when there is none."""
    found = await paths(conn, caller.id, customer_id, admin=caller.is_admin)
    if not found:
        raise NotFound("customer not found")
    await audit.record(conn, caller.actor, f"customer.{what}", customer_id, {
        "via": [{"group_id": p.group_id, "kind": p.kind, "reason": p.reason}
                for p in found]})
    return found


async def require_customer(conn: Connection, caller: Caller, customer_id: UUID,
                           what: str) -> list[Path]:
    """For a staff read of a customer's data: the paths (audited) or NotFound."""
    return await explain(conn, caller, customer_id, what=what)
