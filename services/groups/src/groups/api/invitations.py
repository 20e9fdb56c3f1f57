"""Routes for invitations: the owner's board, resend and revoke; the customer's answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, EmailStr, Field

from groups.api.common import (
    MAX_IDS,
    Body,
    Cursor,
    Customer,
    D,
    Limit,
    Staff,
    page_limit,
)
from groups.service import invitations
from shared.servicekit.db import transaction
from shared.servicekit.runtime import Pool

router = APIRouter()


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

def _inv(i: invitations.Invitation) -> InvitationOut:
    return InvitationOut(
        id=None if i.id.int == 0 else i.id, group_id=i.group_id, email=i.email,
        customer_id=i.customer_id, status=i.status, created_at=i.created_at,
        sent_at=i.sent_at, expires_at=i.expires_at, responded_at=i.responded_at,
        group_name=i.group_name)

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
                                       cursor=cursor, limit=page_limit(deps, limit))
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
        return _inv(await invitations.decline(conn, deps, caller, invitation_id))
