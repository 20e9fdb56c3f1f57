"""Routes for groups, co-owners, joining, members, a customer's groups and hand-overs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from groups.api.common import (
    MAX_IDS,
    Admin,
    Body,
    Cursor,
    Customer,
    D,
    Limit,
    Staff,
    fields,
    page_limit,
)
from groups.service import groups as svc
from shared.servicekit.db import transaction
from shared.servicekit.runtime import Pool

router = APIRouter()


class NewGroup(Body):
    name: str = Field(min_length=1, max_length=200)
    parent_id: uuid.UUID | None = None


class GroupOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    parent_id: uuid.UUID | None
    join_code: str | None
    passcode: str | None = None


class OwnerOut(BaseModel):
    staff_id: uuid.UUID
    role: str
    username: str | None = None  # from the staff directory (None: not known yet)
    name: str | None = None


class GroupDetail(GroupOut):
    member_count: int
    owners: list[OwnerOut]
    reason: str | None


class GroupItem(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    parent_id: uuid.UUID | None
    join_code: str | None
    member_count: int


class GroupList(BaseModel):
    items: list[GroupItem]
    next_cursor: str | None


class PasscodeOut(BaseModel):
    passcode: str


class OwnerChange(BaseModel):
    group_id: uuid.UUID
    staff_id: uuid.UUID
    role: str | None


class JoinIn(Body):
    join_code: str = Field(min_length=1, max_length=64)
    passcode: str = Field(min_length=1, max_length=64)


class JoinOut(BaseModel):
    group_id: uuid.UUID


class MemberOut(BaseModel):
    customer_id: uuid.UUID
    first_name: str | None
    last_name: str | None
    source: str
    since: datetime


class MemberList(BaseModel):
    items: list[MemberOut]
    next_cursor: str | None


class MembersIn(Body):
    customer_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_IDS)


class MembersAdded(BaseModel):
    added: list[uuid.UUID]

class MembershipOut(BaseModel):
    group_id: uuid.UUID
    name: str
    kind: str
    parent_id: uuid.UUID | None
    source: str
    since: datetime


class MembershipList(BaseModel):
    items: list[MembershipOut]
    next_cursor: str | None = None

class HandOverIn(Body):
    from_staff_id: uuid.UUID
    to_staff_id: uuid.UUID
    group_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_IDS)


class HandOverOut(BaseModel):
    from_staff_id: uuid.UUID
    to_staff_id: uuid.UUID
    group_ids: list[uuid.UUID]

# -- groups ----------------------------------------------------------------------------

@router.post("/v1/groups", status_code=201, response_model=GroupOut)
async def create_group(body: NewGroup, caller: Staff, pool: Pool, deps: D) -> GroupOut:
    async with transaction(pool) as conn:
        g = await svc.create_group(conn, deps, caller, name=body.name,
                                   parent_id=body.parent_id)
    return GroupOut(id=g.id, name=g.name, kind=g.kind, parent_id=g.parent_id,
                    join_code=g.join_code, passcode=g.passcode)


@router.get("/v1/groups", response_model=GroupList)
async def list_groups(
    caller: Staff, pool: Pool, deps: D, cursor: Cursor = None, limit: Limit = None,
    kind: Annotated[Literal["personal", "lwia", "program"] | None, Query()] = None,
) -> GroupList:
    async with transaction(pool) as conn:
        page = await svc.list_groups(conn, caller, kind=kind, cursor=cursor,
                                     limit=page_limit(deps, limit))
    return GroupList(items=[GroupItem(id=g.id, name=g.name, kind=g.kind,
                                      parent_id=g.parent_id, join_code=g.join_code,
                                      member_count=g.member_count or 0) for g in page.items],
                     next_cursor=page.next_cursor)


@router.get("/v1/groups/{group_id}", response_model=GroupDetail)
async def get_group(group_id: uuid.UUID, caller: Staff, pool: Pool) -> GroupDetail:
    async with transaction(pool) as conn:
        g = await svc.get_group(conn, caller, group_id)
    return GroupDetail(id=g.id, name=g.name, kind=g.kind, parent_id=g.parent_id,
                       join_code=g.join_code, passcode=g.passcode,
                       member_count=g.member_count or 0,
                       owners=[OwnerOut(**o) for o in g.owners or []], reason=g.reason)


@router.post("/v1/groups/{group_id}/passcode", response_model=PasscodeOut)
async def rotate_passcode(group_id: uuid.UUID, caller: Staff, pool: Pool, deps: D
                          ) -> PasscodeOut:
    async with transaction(pool) as conn:
        return PasscodeOut(passcode=await svc.rotate_passcode(conn, deps, caller, group_id))


@router.delete("/v1/groups/{group_id}/passcode", status_code=204, response_class=Response)
async def switch_off_passcode(group_id: uuid.UUID, caller: Staff, pool: Pool, deps: D
                              ) -> Response:
    async with transaction(pool) as conn:
        await svc.switch_off_passcode(conn, deps, caller, group_id)
    return Response(status_code=204)


@router.put("/v1/groups/{group_id}/owners/{staff_id}", response_model=OwnerChange)
async def add_co_owner(group_id: uuid.UUID, staff_id: uuid.UUID, caller: Staff, pool: Pool,
                       deps: D, response: Response) -> OwnerChange:
    async with transaction(pool) as conn:
        added = await svc.add_co_owner(conn, deps, caller, group_id, staff_id)
    response.status_code = 201 if added else 200
    return OwnerChange(group_id=group_id, staff_id=staff_id, role="co-owner")


@router.delete("/v1/groups/{group_id}/owners/{staff_id}", status_code=204,
               response_class=Response)
async def remove_co_owner(group_id: uuid.UUID, staff_id: uuid.UUID, caller: Staff,
                          pool: Pool, deps: D) -> Response:
    async with transaction(pool) as conn:
        await svc.remove_co_owner(conn, deps, caller, group_id, staff_id)
    return Response(status_code=204)


class JoinTargetOut(BaseModel):
    name: str
    open: bool


@router.get("/v1/join/{join_code}", response_model=JoinTargetOut)
async def join_target(join_code: Annotated[str, Path(min_length=1, max_length=64)],
                      caller: Customer, pool: Pool) -> JoinTargetOut:
    """The group a web address names (its name, and whether joining is open), for the
    page that asks for the passcode; 404 for no such address."""
    async with transaction(pool) as conn:
        target = await svc.join_target(conn, join_code)
    return JoinTargetOut(name=target.name, open=target.open)


@router.post("/v1/join", response_model=JoinOut)
async def join(body: JoinIn, caller: Customer, pool: Pool, deps: D) -> JoinOut:
    try:
        async with transaction(pool) as conn:
            group_id = await svc.join(conn, deps, caller, join_code=body.join_code,
                                      passcode=body.passcode)
    except svc.WrongPasscode as exc:
        async with transaction(pool) as conn:
            await svc.join_failure(conn, deps, caller.id, exc.group_id)
        raise
    return JoinOut(group_id=group_id)


# -- members ---------------------------------------------------------------------------

@router.get("/v1/groups/{group_id}/members", response_model=MemberList)
async def members(
    group_id: uuid.UUID, caller: Staff, pool: Pool, deps: D, cursor: Cursor = None,
    limit: Limit = None,
    source: Annotated[Literal["passcode", "invitation", "staff", "iwds", "program"] | None,
                      Query()] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
) -> MemberList:
    async with transaction(pool) as conn:
        page = await svc.members(conn, caller, group_id, source=source, q=q, cursor=cursor,
                                 limit=page_limit(deps, limit))
    return MemberList(items=[MemberOut(**fields(m)) for m in page.items],
                      next_cursor=page.next_cursor)


@router.post("/v1/groups/{group_id}/members", response_model=MembersAdded)
async def add_members(group_id: uuid.UUID, body: MembersIn, caller: Staff, pool: Pool,
                      deps: D) -> MembersAdded:
    async with transaction(pool) as conn:
        added = await svc.add_members(conn, deps, caller, group_id, body.customer_ids)
    return MembersAdded(added=added)


@router.delete("/v1/groups/{group_id}/members/{customer_id}", status_code=204,
               response_class=Response)
async def remove_member(group_id: uuid.UUID, customer_id: uuid.UUID, caller: Staff,
                        pool: Pool, deps: D) -> Response:
    async with transaction(pool) as conn:
        await svc.remove_member(conn, deps, caller, group_id, customer_id)
    return Response(status_code=204)

@router.get("/v1/me/groups", response_model=MembershipList)
async def my_groups(caller: Customer, pool: Pool) -> MembershipList:
    async with transaction(pool) as conn:
        items = await svc.my_groups(conn, caller)
    return MembershipList(items=[MembershipOut(**fields(m)) for m in items])

@router.get("/v1/customers/{customer_id}/groups", response_model=MembershipList)
async def customer_groups(customer_id: uuid.UUID, caller: Staff, pool: Pool
                          ) -> MembershipList:
    async with transaction(pool) as conn:
        items = await svc.customer_groups(conn, caller, customer_id)
    return MembershipList(items=[MembershipOut(**fields(m)) for m in items])

@router.post("/v1/hand-overs", response_model=HandOverOut)
async def hand_over(body: HandOverIn, caller: Admin, pool: Pool, deps: D) -> HandOverOut:
    async with transaction(pool) as conn:
        moved = await svc.hand_over(conn, deps, caller, from_staff=body.from_staff_id,
                                    to_staff=body.to_staff_id, group_ids=body.group_ids)
    return HandOverOut(from_staff_id=body.from_staff_id, to_staff_id=body.to_staff_id,
                       group_ids=moved)
