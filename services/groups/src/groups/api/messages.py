"""Routes for messages to a group and to one customer."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel, Field

from groups.api.common import (
    Body,
    D,
    Staff,
)
from groups.domain import BODY_MAX, SUBJECT_MAX
from groups.service import messages
from shared.servicekit.db import transaction
from shared.servicekit.runtime import Pool

router = APIRouter()


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
