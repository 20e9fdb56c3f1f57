"""Events the identity service consumes: event type -> handler.

The consumer subscribes to exactly these types' topics. Identity reads its own
account events to keep the duplicates queue, so matching a new account never
slows the request that created it.
"""

from __future__ import annotations

from identity.deps import Deps
from identity.service import customers
from identity.service import matcher as matcher_svc
from identity.service import matching as matches
from shared.schemas.enrollment import CustomerEnrolled
from shared.schemas.envelope import Envelope
from shared.schemas.identity import CustomerAccountCreated, CustomerAccountUpdated
from shared.servicekit.consumer import Subscriptions
from shared.servicekit.db import Connection


def _matcher(ids: Deps) -> matcher_svc.Matcher:
    return matcher_svc.Matcher(ids.vault, ids.thresholds)


async def on_account_created(
    conn: Connection, ids: Deps, event: CustomerAccountCreated, envelope: Envelope
) -> None:
    await matches.refresh_duplicates(conn, _matcher(ids), event.account_id, replace=False)


async def on_account_updated(
    conn: Connection, ids: Deps, event: CustomerAccountUpdated, envelope: Envelope
) -> None:
    await matches.refresh_duplicates(conn, _matcher(ids), event.account_id, replace=True)


async def on_customer_enrolled(
    conn: Connection, ids: Deps, event: CustomerEnrolled, envelope: Envelope
) -> None:
    await customers.add_program_identifiers(
        conn, event.customer_id, [(i.kind, i.value.upper()) for i in event.identifiers])


SUBSCRIPTIONS: Subscriptions = {
    CustomerAccountCreated: on_account_created,
    CustomerAccountUpdated: on_account_updated,
    CustomerEnrolled: on_customer_enrolled,
}
