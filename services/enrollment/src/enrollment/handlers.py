"""Events the enrollment service consumes: event type -> handler.

Staff are known from identity's staff events (their status and roles), and
customers from its account events; a merge moves the merged account's
enrollments to the survivor, an unmerge moves back the ones made for it.
The consumer subscribes to exactly these types' topics.
"""

from __future__ import annotations

from enrollment.deps import Deps
from enrollment.service import accounts
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


async def on_staff(
    conn: Connection, deps: Deps, event: StaffAccountCreated | StaffAccountUpdated,
    envelope: Envelope,
) -> None:
    await accounts.record_staff(conn, event, at=envelope.occurred_at)


async def on_customer_created(
    conn: Connection, deps: Deps, event: CustomerAccountCreated, envelope: Envelope
) -> None:
    await accounts.record_customer(conn, event, at=envelope.occurred_at)


async def on_customer_updated(
    conn: Connection, deps: Deps, event: CustomerAccountUpdated, envelope: Envelope
) -> None:
    await accounts.update_customer(conn, event)


async def on_merged(
    conn: Connection, deps: Deps, event: CustomerAccountsMerged, envelope: Envelope
) -> None:
    await accounts.merge(conn, event, event_id=envelope.event_id)


async def on_unmerged(
    conn: Connection, deps: Deps, event: CustomerAccountsUnmerged, envelope: Envelope
) -> None:
    await accounts.unmerge(conn, event, event_id=envelope.event_id)


SUBSCRIPTIONS: Subscriptions = {
    StaffAccountCreated: on_staff,
    StaffAccountUpdated: on_staff,
    CustomerAccountCreated: on_customer_created,
    CustomerAccountUpdated: on_customer_updated,
    CustomerAccountsMerged: on_merged,
    CustomerAccountsUnmerged: on_unmerged,
}
