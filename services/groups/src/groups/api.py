"""The groups service's HTTP routes (pinned paths): parse, call a use case, shape the
answer. Domain errors rise to the kit, which answers RFC 9457 problems."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from groups.deps import Deps
from groups.domain import BODY_MAX, SUBJECT_MAX
from groups.service import access, invitations, messages
from groups.service import groups as svc
from groups.service.common import Caller
from shared.servicekit.auth import Principal, require_customer, require_staff
from shared.servicekit.db import transaction
from shared.servicekit.http import PROBLEM_BASE, Problem
from shared.servicekit.paging import MAX_CURSOR_LENGTH
from shared.servicekit.runtime import Pool, get_deps

router = APIRouter()

MAX_IDS = 1000


def _caller(p: Principal) -> Caller:
    try:
        return Caller(p.id, p.kind, p.roles)
    except ValueError:
        raise Problem(401, "Unauthorized", "the token's subject is not an account id",
                      type_=PROBLEM_BASE + "unauthorized") from None


async def staff_caller(p: Annotated[Principal, require_staff()]) -> Caller:
    return _caller(p)


async def admin_caller(p: Annotated[Principal, require_staff("admin")]) -> Caller:
    return _caller(p)


async def customer_caller(p: Annotated[Principal, require_customer()]) -> Caller:
    return _caller(p)


Staff = Annotated[Caller, Depends(staff_caller)]
Admin = Annotated[Caller, Depends(admin_caller)]
Customer = Annotated[Caller, Depends(customer_caller)]
D = Annotated[Deps, Depends(get_deps)]
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]
Limit = Annotated[int | None, Query(ge=1, le=500)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- models ----------------------------------------------------------------------------

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


class InviteIn(Body):
    emails: list[EmailStr] = Field(default_factory=list, max_length=MAX_IDS)
    customer_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_IDS)


class InvitationOut(BaseModel):
    id: uuid.UUID | None
    group_id: uuid.UUID
    email: str | None = None
    customer_id: uuid.UUID | None = None
    status: str
    created_at: datetime | None = None
    sent_at: datetime | None = None
    expires_at: datetime | None = None
    responded_at: datetime | None = None
    group_name: str | None = None


class InvitationList(BaseModel):
    items: list[InvitationOut]
    next_cursor: str | None = None


class AcceptOut(BaseModel):
    invitation_id: uuid.UUID
    status: str
    group_id: uuid.UUID


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


class PathOut(BaseModel):
    group_id: uuid.UUID | None
    kind: str
    name: str
    reason: str


class AccessOut(BaseModel):
    customer_id: uuid.UUID
    via: list[PathOut]


class GroupMessageIn(Body):
    subject: str = Field(min_length=1, max_length=SUBJECT_MAX)
    body: str = Field(min_length=1, max_length=BODY_MAX)
    include_subgroups: bool = False
    customer_ids: list[uuid.UUID] | None = Field(default=None, max_length=100_000)


class GroupMessageOut(BaseModel):
    message_id: uuid.UUID
    recipients: int


class DirectMessageIn(Body):
    subject: str = Field(min_length=1, max_length=SUBJECT_MAX)
    body: str = Field(min_length=1, max_length=BODY_MAX)


class DirectMessageOut(BaseModel):
    message_id: uuid.UUID


class HandOverIn(Body):
    from_staff_id: uuid.UUID
    to_staff_id: uuid.UUID
    group_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_IDS)


class HandOverOut(BaseModel):
    from_staff_id: uuid.UUID
    to_staff_id: uuid.UUID
    group_ids: list[uuid.UUID]


def _limit(deps: Deps, limit: int | None) -> int:
    return limit or deps.settings.page_size


def _inv(i: invitations.Invitation) -> InvitationOut:
    return InvitationOut(
        id=None if i.id.int == 0 else i.id, group_id=i.group_id, email=i.email,
        customer_id=i.customer_id, status=i.status, created_at=i.created_at,
        sent_at=i.sent_at, expires_at=i.expires_at, responded_at=i.responded_at,
        group_name=i.group_name)


def _dump(obj: Any) -> dict[str, Any]:
    return dict(obj.__dict__)


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
                                     limit=_limit(deps, limit))
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
                                 limit=_limit(deps, limit))
    return MemberList(items=[MemberOut(**_dump(m)) for m in page.items],
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


# -- invitations -----------------------------------------------------------------------

@router.post("/v1/groups/{group_id}/invitations", status_code=201,
             response_model=InvitationList, response_model_exclude_none=True)
async def invite(group_id: uuid.UUID, body: InviteIn, caller: Staff, pool: Pool, deps: D
                 ) -> InvitationList:
    async with transaction(pool) as conn:
        out = await invitations.invite(conn, deps, caller, group_id,
                                       emails=[str(e) for e in body.emails],
                                       customer_ids=body.customer_ids)
    return InvitationList(items=[_inv(i) for i in out])


@router.get("/v1/groups/{group_id}/invitations", response_model=InvitationList)
async def invitation_board(
    group_id: uuid.UUID, caller: Staff, pool: Pool, deps: D, cursor: Cursor = None,
    limit: Limit = None,
    status: Annotated[Literal["pending", "accepted", "declined", "expired", "revoked"] | None,
                      Query()] = None,
) -> InvitationList:
    async with transaction(pool) as conn:
        page = await invitations.board(conn, deps, caller, group_id, status=status,
                                       cursor=cursor, limit=_limit(deps, limit))
    return InvitationList(items=[_inv(i) for i in page.items], next_cursor=page.next_cursor)


@router.post("/v1/invitations/{invitation_id}/resend", response_model=InvitationOut)
async def resend(invitation_id: uuid.UUID, caller: Staff, pool: Pool, deps: D
                 ) -> InvitationOut:
    async with transaction(pool) as conn:
        return _inv(await invitations.resend(conn, deps, caller, invitation_id))


@router.post("/v1/invitations/{invitation_id}/revoke", response_model=InvitationOut)
async def revoke(invitation_id: uuid.UUID, caller: Staff, pool: Pool, deps: D
                 ) -> InvitationOut:
    async with transaction(pool) as conn:
        return _inv(await invitations.revoke(conn, deps, caller, invitation_id))


@router.get("/v1/me/invitations", response_model=InvitationList)
async def my_invitations(caller: Customer, pool: Pool, deps: D) -> InvitationList:
    async with transaction(pool) as conn:
        return InvitationList(items=[_inv(i) for i in await invitations.mine(conn, deps,
                                                                               caller)])


@router.post("/v1/invitations/{invitation_id}/accept", response_model=AcceptOut)
async def accept(invitation_id: uuid.UUID, caller: Customer, pool: Pool, deps: D
                 ) -> AcceptOut:
    async with transaction(pool) as conn:
        group_id = await invitations.accept(conn, deps, caller, invitation_id)
    return AcceptOut(invitation_id=invitation_id, status="accepted", group_id=group_id)


@router.post("/v1/invitations/{invitation_id}/decline", response_model=InvitationOut)
async def decline(invitation_id: uuid.UUID, caller: Customer, pool: Pool, deps: D
                  ) -> InvitationOut:
    async with transaction(pool) as conn:
        await invitations.decline(conn, deps, caller, invitation_id)
        from groups.repository import invitations as inv_repo
        row = await inv_repo.get(conn, invitation_id)
    assert row is not None
    return InvitationOut(id=row["id"], group_id=row["group_id"], status=row["status"],
                         customer_id=caller.id, responded_at=row["responded_at"])


# -- customers ---------------------------------------------------------------------------

@router.get("/v1/me/groups", response_model=MembershipList)
async def my_groups(caller: Customer, pool: Pool) -> MembershipList:
    async with transaction(pool) as conn:
        items = await svc.my_groups(conn, caller)
    return MembershipList(items=[MembershipOut(**_dump(m)) for m in items])


@router.get("/v1/access/customers/{customer_id}", response_model=AccessOut)
async def explain_access(customer_id: uuid.UUID, caller: Staff, pool: Pool) -> AccessOut:
    async with transaction(pool) as conn:
        found = await access.explain(conn, caller, customer_id)
    return AccessOut(customer_id=customer_id, via=[PathOut(**_dump(p)) for p in found])


@router.get("/v1/customers/{customer_id}/groups", response_model=MembershipList)
async def customer_groups(customer_id: uuid.UUID, caller: Staff, pool: Pool
                          ) -> MembershipList:
    async with transaction(pool) as conn:
        items = await svc.customer_groups(conn, caller, customer_id)
    return MembershipList(items=[MembershipOut(**_dump(m)) for m in items])


# -- messages --------------------------------------------------------------------------

@router.post("/v1/groups/{group_id}/messages", status_code=202,
             response_model=GroupMessageOut)
async def message_group(group_id: uuid.UUID, body: GroupMessageIn, caller: Staff,
                        pool: Pool, deps: D) -> GroupMessageOut:
    async with transaction(pool) as conn:
        message_id, n = await messages.send_to_group(
            conn, deps, caller, group_id, subject=body.subject, body=body.body,
            include_subgroups=body.include_subgroups, customer_ids=body.customer_ids)
    deps.messages_waiting.set()
    return GroupMessageOut(message_id=message_id, recipients=n)


@router.post("/v1/customers/{customer_id}/messages", status_code=202,
             response_model=DirectMessageOut)
async def message_customer(customer_id: uuid.UUID, body: DirectMessageIn, caller: Staff,
                           pool: Pool, deps: D) -> DirectMessageOut:
    async with transaction(pool) as conn:
        message_id = await messages.send_direct(conn, deps, caller, customer_id,
                                                subject=body.subject, body=body.body)
    return DirectMessageOut(message_id=message_id)


@router.post("/v1/hand-overs", response_model=HandOverOut)
async def hand_over(body: HandOverIn, caller: Admin, pool: Pool, deps: D) -> HandOverOut:
    async with transaction(pool) as conn:
        moved = await svc.hand_over(conn, deps, caller, from_staff=body.from_staff_id,
                                    to_staff=body.to_staff_id, group_ids=body.group_ids)
    return HandOverOut(from_staff_id=body.from_staff_id, to_staff_id=body.to_staff_id,
                       group_ids=moved)
