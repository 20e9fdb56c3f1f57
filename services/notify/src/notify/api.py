"""notify's routes: the customer's inbox, and the status of a message for staff."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from notify import repository, service
from notify.deps import Deps
from notify.domain import STATUSES
from shared.servicekit.access import bearer_token
from shared.servicekit.auth import Principal, require_customer, require_staff
from shared.servicekit.db import transaction
from shared.servicekit.errors import FieldError, InvalidInput
from shared.servicekit.paging import MAX_CURSOR_LENGTH
from shared.servicekit.runtime import Pool, get_deps

router = APIRouter(prefix="/v1")

Customer = Annotated[Principal, require_customer()]
Staff = Annotated[Principal, require_staff()]
DepsDep = Annotated[Deps, Depends(get_deps)]
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]


class InboxItemOut(BaseModel):
    id: uuid.UUID
    message_id: uuid.UUID
    kind: str
    subject: str
    body: str
    received_at: datetime
    read_at: datetime | None

    @classmethod
    def of(cls, i: repository.InboxItem) -> InboxItemOut:
        return cls(id=i.id, message_id=i.message_id, kind=i.kind, subject=i.subject,
                   body=i.body, received_at=i.received_at, read_at=i.read_at)


class InboxPageOut(BaseModel):
    items: list[InboxItemOut]
    unread: int
    next_cursor: str | None


class Counts(BaseModel):
    queued: int
    sent: int
    deferred: int
    failed: int
    suppressed: int


class MessageStatusOut(BaseModel):
    message_id: uuid.UUID
    kind: str
    counts: Counts
    total: int


class DeliveryOut(BaseModel):
    id: int
    customer_id: uuid.UUID | None
    channel: str
    address: str | None
    status: str
    attempts: int
    last_reply: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


class DeliveryPageOut(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class ResendOut(BaseModel):
    message_id: uuid.UUID
    requeued: int


@router.get("/inbox", response_model=InboxPageOut, tags=["inbox"])
async def get_inbox(
    principal: Customer, pool: Pool, cursor: Cursor = None, limit: Limit = 50,
) -> InboxPageOut:
    """The caller's inbox, newest first, with the number of unread items."""
    async with transaction(pool) as conn:
        page = await service.inbox(conn, principal.id, cursor, limit)
    return InboxPageOut(items=[InboxItemOut.of(i) for i in page.items], unread=page.unread,
                        next_cursor=page.next_cursor)


@router.post("/inbox/{item_id}/read", response_model=InboxItemOut, tags=["inbox"])
async def read_inbox_item(
    item_id: uuid.UUID, principal: Customer, pool: Pool, deps: DepsDep,
) -> InboxItemOut:
    """Mark one of the caller's own items read (404 for anyone else's)."""
    async with transaction(pool) as conn:
        item = await service.read_item(conn, deps, principal.id, item_id)
    return InboxItemOut.of(item)


@router.get("/messages/{message_id}", response_model=MessageStatusOut, tags=["messages"])
async def get_message_status(
    message_id: uuid.UUID, principal: Staff, pool: Pool, deps: DepsDep, request: Request,
) -> MessageStatusOut:
    """How far a message got: deliveries per status (the sender, staff who reach the
    group, or an admin; 404 for others, 503 when groups cannot be asked)."""
    m = await service.visible_message(pool, deps, principal, bearer_token(request), message_id)
    async with transaction(pool) as conn:
        st = await service.message_status(conn, m)
    return MessageStatusOut(message_id=st.message.id, kind=st.message.kind,
                            counts=Counts(**st.counts), total=st.total)


def _statuses(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    wanted = {v.strip() for raw in values for v in raw.split(",") if v.strip()}
    bad = sorted(wanted - set(STATUSES))
    if bad:
        raise InvalidInput([FieldError("status", f"must be one of {', '.join(STATUSES)}")])
    if "queued" in wanted:  # 'sending' is shown as queued
        wanted.add("sending")
    return sorted(wanted)


@router.get("/messages/{message_id}/deliveries", response_model=DeliveryPageOut,
            tags=["messages"])
async def list_deliveries(
    message_id: uuid.UUID, principal: Staff, pool: Pool, deps: DepsDep, request: Request,
    status: Annotated[list[str] | None, Query()] = None,
    cursor: Cursor = None, limit: Limit = 100,
) -> DeliveryPageOut:
    """One row per recipient and channel, with the last SMTP reply."""
    statuses = _statuses(status)
    m = await service.visible_message(pool, deps, principal, bearer_token(request), message_id)
    async with transaction(pool) as conn:
        rows, nxt = await service.deliveries(conn, m, statuses, cursor, limit)
    items: list[Any] = [DeliveryOut(**r.__dict__) for r in rows]
    return DeliveryPageOut(items=items, next_cursor=nxt)


@router.post("/messages/{message_id}/resend-failed", response_model=ResendOut,
             tags=["messages"])
async def resend_failed(
    message_id: uuid.UUID, principal: Staff, pool: Pool, deps: DepsDep, request: Request,
) -> ResendOut:
    """Queue the failed emails of a message again (only those)."""
    m = await service.visible_message(pool, deps, principal, bearer_token(request), message_id)
    async with transaction(pool) as conn:
        n = await service.resend_failed(conn, deps, principal, m)
    return ResendOut(message_id=message_id, requeued=n)
