"""Look-ups in the staff and customer directory, for the staff pages: a staff member by
username (to make a co-owner or hand groups over), a customer by username or email (to
add a member by hand; only customers the caller reaches are found)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from groups.api.common import Staff, fields
from groups.service import directory
from shared.servicekit.db import transaction
from shared.servicekit.errors import FieldError, InvalidInput
from shared.servicekit.runtime import Pool

router = APIRouter()
Text = Annotated[str | None, Query(min_length=1, max_length=320)]


class StaffEntryOut(BaseModel):
    id: uuid.UUID
    username: str
    name: str
    status: str


class CustomerEntryOut(BaseModel):
    id: uuid.UUID
    username: str | None
    first_name: str | None
    last_name: str | None


class CustomerEntries(BaseModel):
    items: list[CustomerEntryOut]


@router.get("/v1/directory/staff", response_model=StaffEntryOut)
async def find_staff(caller: Staff, pool: Pool,
                     username: Annotated[str, Query(min_length=1, max_length=200)]
                     ) -> StaffEntryOut:
    """A staff member by username (any case); 404 when no one has it."""
    async with transaction(pool) as conn:
        found = await directory.find_staff(conn, username)
    return StaffEntryOut(**fields(found))


@router.get("/v1/directory/customers", response_model=CustomerEntries)
async def find_customers(caller: Staff, pool: Pool, username: Text = None,
                         email: Text = None) -> CustomerEntries:
    """Customers with this username or email whom the caller reaches (audited)."""
    if bool(username) == bool(email):
        raise InvalidInput([FieldError("username", "give a username or an email, not both")])
    async with transaction(pool) as conn:
        found = await directory.find_customers(conn, caller, username=username, email=email)
    return CustomerEntries(items=[CustomerEntryOut(**fields(c)) for c in found])
