"""Staff's routes on customer accounts, and the customers' own password recovery."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel, Field

from identity.api.common import CustomerView, Ids, Staff, customer_view, door_limit
from identity.domain.accounts import PossibleDuplicates
from identity.domain.limits import MatchCaller
from identity.service import customers, limits
from shared.contracts.identity import CreatedCustomer, CustomerCreate
from shared.servicekit.access import bearer_token
from shared.servicekit.db import transaction
from shared.servicekit.runtime import Pool

router = APIRouter()


@router.post("/v1/customers", status_code=201, tags=["customers"])
async def create_customer(
    body: CustomerCreate, pool: Pool, ids: Ids, staff: Staff,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> CreatedCustomer:
    cmd = customers.NewCustomer(
        first_name=body.first_name, last_name=body.last_name, date_of_birth=body.date_of_birth,
        ssn=body.ssn, email=body.email,
        identifiers=[(i.kind, i.value) for i in body.identifiers],
        rejected_account_ids=body.rejected_account_ids,
    )
    try:
        created = await customers.create_customer(
            pool, ids, cmd, staff_id=staff.id, idempotency_key=idempotency_key)
    except PossibleDuplicates:
        # the candidates and their evidence are a match answer: counted against the
        # staff member's match limit like a search (429 instead, past it)
        await limits.count_match(pool, ids, MatchCaller(staff.id, "staff"), "POST /v1/customers")
        raise
    return CreatedCustomer.model_validate(created.body())


@router.get("/v1/customers/{account_id}", tags=["customers"])
async def get_customer(
    account_id: uuid.UUID, request: Request, pool: Pool, ids: Ids, staff: Staff
) -> CustomerView:
    """404 to staff who do not reach the customer (groups' rule; the creator does)."""
    async with pool.acquire() as conn:
        await customers.require_reach(conn, ids, account_id, staff, bearer_token(request))
    async with transaction(pool) as conn:
        customer = await customers.view_customer(conn, account_id, staff_id=staff.id)
    return customer_view(customer)


class TemporaryPassword(BaseModel):
    """A new temporary password, shown this once."""

    id: uuid.UUID
    temporary_password: str = Field(repr=False)
    password_expires_at: str


@router.post("/v1/customers/{account_id}/password-reset", tags=["customers"])
async def reset_password(
    account_id: uuid.UUID, request: Request, pool: Pool, ids: Ids, staff: Staff
) -> TemporaryPassword:
    async with pool.acquire() as conn:
        await customers.require_reach(conn, ids, account_id, staff, bearer_token(request))
    password, expires_at = await customers.reset_password_by_staff(
        pool, ids, account_id, staff_id=staff.id)
    return TemporaryPassword(id=account_id, temporary_password=password,
                             password_expires_at=expires_at.isoformat())


# -- self-service recovery ---------------------------------------------------------------------


class RecoveryRequest(BaseModel):
    email: str = Field(min_length=3, max_length=320)


class RecoveryCompletion(BaseModel):
    token: str = Field(min_length=10, max_length=200)
    new_password: str = Field(min_length=1, max_length=1024)


class Accepted(BaseModel):
    status: str


@router.post("/v1/password-recovery", status_code=202, tags=["recovery"],
             dependencies=[door_limit("recovery")])
async def request_recovery(body: RecoveryRequest, pool: Pool, ids: Ids) -> Accepted:
    """The same answer whether or not the email is known."""
    async with transaction(pool) as conn:
        await customers.request_recovery(conn, ids, body.email)
    return Accepted(status="if the email belongs to an account, a link is on its way")


@router.post("/v1/password-recovery/complete", status_code=204, tags=["recovery"],
             response_class=Response, dependencies=[door_limit("recovery")])
async def complete_recovery(body: RecoveryCompletion, pool: Pool, ids: Ids) -> None:
    await customers.complete_recovery(pool, ids, body.token, body.new_password)
