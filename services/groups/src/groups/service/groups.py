"""Groups, subgroups, co-owners, members, joining by passcode, hand-overs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from groups import domain
from groups.deps import Deps
from groups.repository import access as access_repo
from groups.repository import directory
from groups.repository import groups as repo
from groups.repository import invitations as inv_repo
from groups.service import access, membership
from groups.service.common import Caller, Page, cursor_key, owned_group, parse_uuid, reached_group
from shared.schemas.groups import GroupCreated
from shared.servicekit import audit
from shared.servicekit.db import Connection
from shared.servicekit.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
)
from shared.servicekit.paging import encode_cursor


@dataclass(frozen=True)
class GroupView:
    id: UUID
    name: str
    kind: str
    parent_id: UUID | None
    join_code: str | None
    passcode: str | None
    member_count: int | None = None
    owners: list[dict[str, Any]] | None = None
    reason: str | None = None


def _view(g: asyncpg.Record, *, show_passcode: bool, **extra: Any) -> GroupView:
    return GroupView(g["id"], g["name"], g["kind"], g["parent_id"], g["join_code"],
                     g["passcode"] if show_passcode else None, **extra)


async def create_group(conn: Connection, deps: Deps, caller: Caller, *, name: str,
                       parent_id: UUID | None) -> GroupView:
    """A personal group (with a join code and a passcode), or a subgroup of a group the
    caller owns or, for LWIA and program groups, reaches."""
    name = name.strip()
    if not name:
        raise InvalidInput([FieldError("name", "must not be empty")])
    now = deps.clock.now()
    group_id = uuid.uuid4()
    if parent_id is None:
        group = await repo.insert_group(
            conn, id=group_id, kind="personal", name=name, parent=None, owner_id=caller.id,
            join_code=domain.new_join_code(), passcode=domain.new_passcode(), now=now)
    else:
        parent, r = await reached_group(conn, caller, parent_id, lock=True)
        if not r.owns and not (parent["kind"] != "personal" and (r.iwds or r.program)):
            raise Forbidden("only the group's owners may make subgroups of it",
                            code="not-owner")
        domain.child_depth(parent["depth"])
        group = await repo.insert_group(
            conn, id=group_id, kind=parent["kind"], name=name, parent=parent,
            owner_id=caller.id, join_code=None, passcode=None, now=now)
    await repo.add_owner(conn, group_id, caller.id, "owner", now)
    await deps.outbox.add(conn, GroupCreated(
        group_id=group_id, kind=group["kind"], name=name, parent_group_id=parent_id,
        owner_staff_id=caller.id, lwia_code=group["lwia_code"], program=group["program"]))
    await audit.record(conn, caller.actor, "group.created", group_id,
                       {"parent_id": parent_id, "kind": group["kind"]})
    return _view(group, show_passcode=True)


async def list_groups(conn: Connection, caller: Caller, *, kind: str | None,
                      cursor: str | None, limit: int) -> Page:
    key = cursor_key(cursor, 2)
    after = (str(key[0]), parse_uuid(key[1], "cursor")) if key else None
    rows = await access_repo.reached_groups(conn, caller.id, kind=kind, after=after,
                                            limit=limit + 1, admin=caller.is_admin)
    more = len(rows) > limit
    rows = rows[:limit]
    counts = await repo.member_counts(conn, [r["id"] for r in rows])
    items = [GroupView(r["id"], r["name"], r["kind"], r["parent_id"], r["join_code"], None,
                       counts.get(r["id"], 0)) for r in rows]
    return Page(items, encode_cursor(rows[-1]["name"], str(rows[-1]["id"])) if more else None)


async def get_group(conn: Connection, caller: Caller, group_id: UUID) -> GroupView:
    group, r = await reached_group(conn, caller, group_id)
    owners = [{"staff_id": o["staff_id"], "role": o["role"], "username": o["username"],
               "name": o["name"]}
              for o in await repo.owners(conn, group_id)]
    reason = (f"{r.owner_role} of the group or a parent" if r.owns
              else "authorized for the program" if r.program else r.iwds or "admin role")
    return _view(group, show_passcode=r.owns, member_count=await repo.member_count(
        conn, group_id), owners=owners, reason=reason)


def _joinable(group: asyncpg.Record) -> None:
    if group["join_code"] is None:
        raise Conflict("group", "has no web address: only personal groups are joined",
                       code="not-joinable")


async def rotate_passcode(conn: Connection, deps: Deps, caller: Caller, group_id: UUID
                          ) -> str:
    group = await owned_group(conn, caller, group_id, lock=True)
    _joinable(group)
    passcode = domain.new_passcode()
    await repo.set_passcode(conn, group_id, passcode)
    await audit.record(conn, caller.actor, "group.passcode_rotated", group_id)
    return passcode


async def switch_off_passcode(conn: Connection, deps: Deps, caller: Caller, group_id: UUID
                              ) -> None:
    group = await owned_group(conn, caller, group_id, lock=True)
    _joinable(group)
    await repo.set_passcode(conn, group_id, None)
    await audit.record(conn, caller.actor, "group.passcode_switched_off", group_id)


async def add_co_owner(conn: Connection, deps: Deps, caller: Caller, group_id: UUID,
                       staff_id: UUID) -> bool:
    """True when the staff member became a co-owner (False: already an owner)."""
    await owned_group(conn, caller, group_id, lock=True)
    s = await directory.staff(conn, staff_id)
    if s is None or s["status"] != "active":
        raise NotFound("staff member not found")
    added = await repo.add_owner(conn, group_id, staff_id, "co-owner", deps.clock.now())
    if added:
        await audit.record(conn, caller.actor, "group.co_owner_added", group_id,
                           {"staff_id": staff_id})
    return added


async def remove_co_owner(conn: Connection, deps: Deps, caller: Caller, group_id: UUID,
                          staff_id: UUID) -> None:
    group = await owned_group(conn, caller, group_id, lock=True)
    if group["owner_id"] == staff_id:
        raise Conflict("staff_id", "is the group's owner: hand the group over instead",
                       code="owner")
    if not await repo.remove_owner(conn, group_id, staff_id):
        raise NotFound("not a co-owner of this group")
    await audit.record(conn, caller.actor, "group.co_owner_removed", group_id,
                       {"staff_id": staff_id})


# -- joining -------------------------------------------------------------------------

async def join_failure(conn: Connection, deps: Deps, customer_id: UUID,
                       group_id: UUID | None) -> None:
    """Count a wrong passcode or join code (its own transaction: the join writes nothing)."""
    await inv_repo.record_failure(conn, customer_id, group_id, deps.clock.now())


async def check_throttle(conn: Connection, deps: Deps, customer_id: UUID,
                         group_id: UUID | None) -> None:
    now = deps.clock.now()
    by_customer, by_group = await inv_repo.failures(
        conn, customer_id=customer_id, group_id=group_id,
        since=now - domain.JOIN_THROTTLE_WINDOW)
    waits = [w for w in (domain.throttle_retry_after(by_customer, now),
                         domain.throttle_retry_after(by_group, now)) if w is not None]
    if waits:
        raise TooManyRequests("too many wrong passcodes: try again later",
                              retry_after=max(waits))


class WrongPasscode(Forbidden):
    """A wrong join code or passcode; the api counts it (``group_id``: which group)."""

    def __init__(self, group_id: UUID | None) -> None:
        self.group_id = group_id
        super().__init__("the join code or passcode is wrong", code="wrong-passcode")


@dataclass(frozen=True)
class JoinTarget:
    name: str
    open: bool  # False: joining by passcode is switched off


async def join_target(conn: Connection, join_code: str) -> JoinTarget:
    """The group a web address names, for the join page (the address is what a customer
    is given with the passcode, so its name is no secret); NotFound for no such address."""
    code = join_code.strip().lower()
    group = await repo.by_join_code(conn, code) if domain.valid_join_code(code) else None
    if group is None:
        raise NotFound("no group has this web address")
    return JoinTarget(name=group["name"], open=group["passcode"] is not None)


async def join(conn: Connection, deps: Deps, caller: Caller, *, join_code: str,
               passcode: str) -> UUID:
    """The group joined. A wrong code raises WrongPasscode and writes nothing: the api
    records the failure for the throttle in a transaction of its own."""
    code = join_code.strip().lower()
    group = await repo.by_join_code(conn, code) if domain.valid_join_code(code) else None
    await check_throttle(conn, deps, caller.id, group["id"] if group else None)
    if group is None:
        raise WrongPasscode(None)
    if group["passcode"] is None:
        raise Conflict("passcode", "joining this group by passcode is switched off",
                       code="joining-switched-off")
    if not domain.passcode_matches(group["passcode"], passcode):
        raise WrongPasscode(group["id"])
    if await directory.customer(conn, caller.id) is None:
        raise Conflict("customer", "your account is not known here yet: try again shortly",
                       code="account-not-known")
    await membership.add(conn, deps, group, [caller.id], "passcode", by=None)
    await audit.record(conn, caller.actor, "group.joined", group["id"], {"via": "passcode"})
    return UUID(str(group["id"]))


# -- members -------------------------------------------------------------------------

@dataclass(frozen=True)
class Member:
    customer_id: UUID
    first_name: str | None
    last_name: str | None
    source: str
    since: datetime


async def members(conn: Connection, caller: Caller, group_id: UUID, *, source: str | None,
                  q: str | None, cursor: str | None, limit: int) -> Page:
    await reached_group(conn, caller, group_id)
    key = cursor_key(cursor, 1)
    after = parse_uuid(key[0], "cursor") if key else None
    rows = await repo.members_page(conn, group_id, source=source, q=q, after=after,
                                   limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    await audit.record_many(conn, caller.actor, "customer.listed_in_group",
                            [r["customer_id"] for r in rows], {"group_id": group_id})
    return Page([Member(r["customer_id"], r["first_name"], r["last_name"], r["source"],
                        r["since"]) for r in rows],
                encode_cursor(str(rows[-1]["customer_id"])) if more else None)


def _hand_edited(group: asyncpg.Record) -> None:
    if group["feed_key"] is not None:
        raise Forbidden("this group follows the feed (IWDS or enrollment): it cannot be"
                        " edited by hand", code="feed-group")


async def add_members(conn: Connection, deps: Deps, caller: Caller, group_id: UUID,
                      customer_ids: Sequence[UUID]) -> list[UUID]:
    """Owners add customers: to a subgroup from its parent's members only; to a top
    group only customers the caller already reaches (others join or are invited)."""
    group = await owned_group(conn, caller, group_id, lock=True)
    _hand_edited(group)
    wanted = list(dict.fromkeys(customer_ids))
    if group["parent_id"] is not None:
        allowed = await repo.members_of(conn, group["parent_id"], wanted)
        reason = "is not a member of the parent group"
    else:
        allowed = {c for c in wanted
                   if await access.paths(conn, caller.id, c, admin=caller.is_admin)}
        allowed &= await directory.known_customers(conn, list(allowed))
        reason = "is not a customer you reach: invite them instead"
    errors = [FieldError(f"customer_ids[{i}]", reason)
              for i, c in enumerate(customer_ids) if c not in allowed]
    if errors:
        raise InvalidInput(errors)
    added = await membership.add(conn, deps, group, wanted, "staff", by=caller.id)
    await audit.record(conn, caller.actor, "group.members_added", group_id,
                       {"customer_ids": added})
    return added


async def remove_member(conn: Connection, deps: Deps, caller: Caller, group_id: UUID,
                        customer_id: UUID) -> None:
    group = await owned_group(conn, caller, group_id, lock=True)
    _hand_edited(group)
    if not await membership.remove(conn, deps, group_id, customer_id, by=caller.id):
        raise NotFound("not a member of this group")
    await audit.record(conn, caller.actor, "group.member_removed", group_id,
                       {"customer_id": customer_id})


@dataclass(frozen=True)
class Membership:
    group_id: UUID
    name: str
    kind: str
    parent_id: UUID | None
    source: str
    since: datetime


async def my_groups(conn: Connection, caller: Caller) -> list[Membership]:
    return [Membership(r["id"], r["name"], r["kind"], r["parent_id"], r["source"], r["since"])
            for r in await repo.memberships_of(conn, caller.id)]


async def customer_groups(conn: Connection, caller: Caller, customer_id: UUID
                          ) -> list[Membership]:
    await access.require_customer(conn, caller, customer_id, "groups_read")
    return [Membership(r["id"], r["name"], r["kind"], r["parent_id"], r["source"], r["since"])
            for r in await repo.memberships_of(conn, customer_id)]


async def hand_over(conn: Connection, deps: Deps, caller: Caller, *, from_staff: UUID,
                    to_staff: UUID, group_ids: Sequence[UUID] | None) -> list[UUID]:
    """An admin moves a staff member's personal groups (all, or these) to another."""
    if from_staff == to_staff:
        raise InvalidInput([FieldError("to_staff_id", "must differ from from_staff_id")])
    target = await directory.staff(conn, to_staff)
    if target is None or target["status"] != "active":
        raise InvalidInput([FieldError("to_staff_id", "is not an active staff member")])
    owned = await repo.personal_roots_of(conn, from_staff)
    if group_ids is None:
        roots = owned
    else:
        wanted = list(dict.fromkeys(group_ids))
        errors = [FieldError(f"group_ids[{i}]", "is not a top group this staff member owns")
                  for i, g in enumerate(wanted) if g not in set(owned)]
        if errors:
            raise InvalidInput(errors)
        roots = wanted
    if roots:
        await repo.hand_over(conn, roots, from_staff, to_staff, deps.clock.now())
    await audit.record(conn, caller.actor, "group.handed_over", from_staff,
                       {"from_staff_id": from_staff, "to_staff_id": to_staff,
                        "group_ids": roots})
    return roots
