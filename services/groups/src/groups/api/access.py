"""The access check: which staff member may see which customer, and why."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel

from groups.api.common import (
    Staff,
    fields,
)
from groups.service import access
from shared.servicekit.db import transaction
from shared.servicekit.runtime import Pool

router = APIRouter()


class PathOut(BaseModel):
    group_id: uuid.UUID | None
    kind: str
    name: str
    reason: str


class AccessOut(BaseModel):
    customer_id: uuid.UUID
    via: list[PathOut]

@router.get("/v1/access/customers/{customer_id}", response_model=AccessOut)
async def explain_access(customer_id: uuid.UUID, caller: Staff, pool: Pool) -> AccessOut:
    async with transaction(pool) as conn:
        found = await access.explain(conn, caller, customer_id)
    return AccessOut(customer_id=customer_id, via=[PathOut(**fields(p)) for p in found])
