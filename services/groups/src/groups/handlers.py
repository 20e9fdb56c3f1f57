"""Events the groups service consumes: event type -> handler.

identity's account events keep the staff and customer directory (a merge moves
memberships, an unmerge moves them back); sync-iwds' records fill the LWIA groups
and its staff access decides who reaches them; enrollment's events fill the
program groups and decide which staff reach them. The consumer subscribes to
exactly these types' topics.
"""

from __future__ import annotations

from groups.deps import Deps
from groups.service import directory, feed
from shared.schemas.enrollment import (
    CustomerEnrolled,
    CustomerExited,
    ProgramStaffAuthorized,
    ProgramStaffRevoked,
)
from shared.schemas.envelope import Envelope
from shared.schemas.identity import (
    CustomerAccountCreated,
    CustomerAccountsMerged,
    CustomerAccountsUnmerged,
    CustomerAccountUpdated,
    StaffAccountCreated,
    StaffAccountUpdated,
)
from shared.schemas.iwds import IwdsRecordRemoved, IwdsRecordUpdated, IwdsStaffAccessUpdated
from shared.servicekit.consumer import Subscriptions
from shared.servicekit.db import Connection


async def on_staff(conn: Connection, deps: Deps,
                   event: StaffAccountCreated | StaffAccountUpdated, envelope: Envelope
                   ) -> None:
    await directory.staff_changed(conn, event, envelope.occurred_at)


async def on_customer_created(conn: Connection, deps: Deps, event: CustomerAccountCreated,
                              envelope: Envelope) -> None:
    await directory.customer_created(conn, deps, event, envelope.occurred_at)
    # IWDS records that named this account before it was known apply now
    await feed.place(conn, deps, event.account_id)


async def on_customer_updated(conn: Connection, deps: Deps, event: CustomerAccountUpdated,
                              envelope: Envelope) -> None:
    await directory.customer_updated(conn, deps, event)


async def on_merged(conn: Connection, deps: Deps, event: CustomerAccountsMerged,
                    envelope: Envelope) -> None:
    await directory.merged(conn, event)


async def on_unmerged(conn: Connection, deps: Deps, event: CustomerAccountsUnmerged,
                      envelope: Envelope) -> None:
    await directory.unmerged(conn, event)


async def on_record_updated(conn: Connection, deps: Deps, event: IwdsRecordUpdated,
                            envelope: Envelope) -> None:
    await feed.record_updated(conn, deps, event, envelope.occurred_at)


async def on_record_removed(conn: Connection, deps: Deps, event: IwdsRecordRemoved,
                            envelope: Envelope) -> None:
    await feed.record_removed(conn, deps, event)


async def on_staff_access(conn: Connection, deps: Deps, event: IwdsStaffAccessUpdated,
                          envelope: Envelope) -> None:
    await feed.staff_access(conn, event)


async def on_program_staff(conn: Connection, deps: Deps,
                           event: ProgramStaffAuthorized | ProgramStaffRevoked,
                           envelope: Envelope) -> None:
    await feed.program_staff(conn, deps, event)


async def on_enrolled(conn: Connection, deps: Deps, event: CustomerEnrolled,
                      envelope: Envelope) -> None:
    await feed.enrolled(conn, deps, event)


async def on_exited(conn: Connection, deps: Deps, event: CustomerExited,
                    envelope: Envelope) -> None:
    await feed.exited(conn, deps, event)


SUBSCRIPTIONS: Subscriptions = {
    StaffAccountCreated: on_staff,
    StaffAccountUpdated: on_staff,
    CustomerAccountCreated: on_customer_created,
    CustomerAccountUpdated: on_customer_updated,
    CustomerAccountsMerged: on_merged,
    CustomerAccountsUnmerged: on_unmerged,
    IwdsRecordUpdated: on_record_updated,
    IwdsRecordRemoved: on_record_removed,
    IwdsStaffAccessUpdated: on_staff_access,
    ProgramStaffAuthorized: on_program_staff,
    ProgramStaffRevoked: on_program_staff,
    CustomerEnrolled: on_enrolled,
    CustomerExited: on_exited,
}
