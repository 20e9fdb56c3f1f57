"""LWIA groups from sync-iwds' feed, IWDS staff access, program groups from enrollment.

Every IWDS record is kept as the feed last described it; a customer's LWIA
memberships are derived from the records naming their account (``place``), so a
record that arrives before its account applies when the account appears, and a
record moving or disappearing takes the customer out of what no longer applies
(with the subgroups below it, staff subgroups included).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

import asyncpg

from groups import domain
from groups.deps import Deps
from groups.repository import access as repo
from groups.repository import directory
from groups.repository import groups as groups_repo
from groups.service import membership
from shared.schemas.enrollment import (
    CustomerEnrolled,
    CustomerExited,
    ProgramStaffAuthorized,
    ProgramStaffRevoked,
)
from shared.schemas.groups import GroupCreated
from shared.schemas.iwds import IwdsRecordRemoved, IwdsRecordUpdated, IwdsStaffAccessUpdated
from shared.servicekit.db import Connection


async def _feed_group(conn: Connection, deps: Deps, fg: domain.FeedGroup,
                      made: dict[str, asyncpg.Record]) -> asyncpg.Record:
    found = made.get(fg.key) or await groups_repo.by_feed_key(conn, fg.key)
    if found is None:
        parent = made.get(fg.parent_key) if fg.parent_key else None
        if fg.parent_key and parent is None:
            parent = await groups_repo.by_feed_key(conn, fg.parent_key)
        found = await groups_repo.insert_group(
            conn, id=uuid.uuid4(), kind="lwia", name=fg.name, parent=parent, owner_id=None,
            join_code=None, passcode=None, now=deps.clock.now(), feed_key=fg.key,
            lwia_code=fg.lwia_code, office_code=fg.office_code, caseload_of=fg.caseload_of)
        await deps.outbox.add(conn, GroupCreated(
            group_id=found["id"], kind="lwia", name=fg.name,
            parent_group_id=parent["id"] if parent else None, lwia_code=fg.lwia_code))
    made[fg.key] = found
    return found


async def place(conn: Connection, deps: Deps, account_id: UUID) -> None:
    """Bring the account's LWIA memberships in line with the IWDS records naming it
    (nothing while the account is not known: it applies when it appears)."""
    if await directory.customer(conn, account_id) is None:
        return
    records = await repo.records_of(conn, account_id)
    wanted = domain.feed_keys(domain.Placement(r["lwia_code"], r["office_code"],
                                               r["case_manager"]) for r in records)
    current = {r["feed_key"]: r["id"] for r in await repo.feed_memberships(conn, account_id)}
    for key, group_id in sorted(current.items(), key=lambda kv: len(kv[0])):
        if key not in wanted:
            await membership.remove(conn, deps, group_id, account_id, by=None)
    made: dict[str, asyncpg.Record] = {}
    for fg in wanted.values():  # parents come before their subgroups
        group = await _feed_group(conn, deps, fg, made)
        if fg.key not in current:
            await membership.add(conn, deps, group, [account_id], "iwds", by=None)


async def record_updated(conn: Connection, deps: Deps, event: IwdsRecordUpdated,
                         at: datetime) -> None:
    before = await repo.upsert_record(
        conn, person_id=event.iwds_person_id, account_id=event.account_id,
        lwia_code=event.lwia_code, office_code=event.office_code,
        case_manager=event.case_manager_staff_id, status=event.status,
        changed_at=at)
    if before is not None and before != event.account_id:
        await place(conn, deps, before)
    if event.account_id is not None:
        await place(conn, deps, event.account_id)


async def record_removed(conn: Connection, deps: Deps, event: IwdsRecordRemoved) -> None:
    account = await repo.delete_record(conn, event.iwds_person_id)
    for a in {account, event.account_id} - {None}:
        assert a is not None
        await place(conn, deps, a)


async def staff_access(conn: Connection, event: IwdsStaffAccessUpdated) -> None:
    await repo.replace_grants(
        conn, event.iwds_staff_id,
        event.worknet_username.lower() if event.worknet_username else None,
        [{"level": g.level, "lwia_code": g.lwia_code, "office_code": g.office_code}
         for g in event.grants])


async def program_group(conn: Connection, deps: Deps, program: str) -> asyncpg.Record:
    key = domain.program_key(program)
    found = await groups_repo.by_feed_key(conn, key)
    if found is None:
        found = await groups_repo.insert_group(
            conn, id=uuid.uuid4(), kind="program", name=f"Program {program}", parent=None,
            owner_id=None, join_code=None, passcode=None, now=deps.clock.now(),
            feed_key=key, program=program)
        await deps.outbox.add(conn, GroupCreated(
            group_id=found["id"], kind="program", name=found["name"], program=program))
    return found


async def program_staff(conn: Connection, deps: Deps,
                        event: ProgramStaffAuthorized | ProgramStaffRevoked) -> None:
    await program_group(conn, deps, event.program)
    if isinstance(event, ProgramStaffAuthorized):
        await repo.authorize_program(conn, event.program, event.staff_id, deps.clock.now())
    else:
        await repo.revoke_program(conn, event.program, event.staff_id)


async def enrolled(conn: Connection, deps: Deps, event: CustomerEnrolled) -> None:
    group = await program_group(conn, deps, event.program)
    await membership.add(conn, deps, group, [event.customer_id], "program",
                             by=event.staff_id)


async def exited(conn: Connection, deps: Deps, event: CustomerExited) -> None:
    group = await program_group(conn, deps, event.program)
    await membership.remove(conn, deps, group["id"], event.customer_id, by=event.by)
