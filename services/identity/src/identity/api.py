"""Identity's HTTP routes: parse, call a use case, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Header, Response
from pydantic import BaseModel, ConfigDict, Field

from identity import customers, service
from identity.api_deps import Ids, Staff
from identity.domain import FieldError, InvalidInput
from identity.records import Customer
from shared.contracts.identity import CreatedCustomer, CustomerCreate
from shared.servicekit.auth import Principal, any_principal, current_principal
from shared.servicekit.db import transaction
from shared.servicekit.http import Problem
from shared.servicekit.runtime import Pool

router = APIRouter()




# -- keys and tokens -----------------------------------------------------------------


@router.get("/.well-known/jwks.json", tags=["auth"])
async def jwks(ids: Ids, response: Response) -> dict[str, Any]:
    assert ids.keyring is not None
    response.headers["Cache-Control"] = "public, max-age=60"
    return ids.keyring.jwks()


class TokenAnswer(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int
    refresh_token: str | None = None
    password_change_required: bool = False


@router.post("/v1/auth/token", tags=["auth"], response_model_exclude_none=True)
async def token(
    pool: Pool, ids: Ids,
    grant_type: Annotated[
        Literal["password", "refresh_token", "client_credentials"], Form()] = "password",
    username: Annotated[str | None, Form(max_length=200)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    client_id: Annotated[str | None, Form(max_length=100)] = None,
    client_secret: Annotated[str | None, Form(max_length=200)] = None,
) -> TokenAnswer:
    """OAuth2 password form (`username`, `password`), `grant_type=refresh_token`, or
    `grant_type=client_credentials` (`client_id`, `client_secret`: a machine's token)."""
    if grant_type == "client_credentials":
        from identity.clients import client_token

        access, ttl = await client_token(pool, ids, client_id, client_secret)
        return TokenAnswer(access_token=access, expires_in=ttl)
    if grant_type == "refresh_token":
        if not refresh_token:
            raise InvalidInput([FieldError("refresh_token", "is required")])
        pair = await service.refresh(pool, ids, refresh_token)
    else:
        missing = [FieldError(f, "is required")
                   for f, v in (("username", username), ("password", password)) if not v]
        if missing:
            raise InvalidInput(missing)
        assert username is not None and password is not None
        pair = await service.sign_in(pool, ids, username, password)
    return TokenAnswer(access_token=pair.access_token, expires_in=pair.expires_in,
                       refresh_token=pair.refresh_token or None,
                       password_change_required=pair.password_change_required)


# -- the signed-in account ----------------------------------------------------------------


@router.get("/v1/me", tags=["me"])
async def me(
    principal: Annotated[Principal, Depends(current_principal)], pool: Pool
) -> dict[str, Any]:
    from identity import repository as repo

    async with pool.acquire() as conn:
        await service.check_session(conn, str(principal.claims.get("sid", "")))
        account_id = principal.id
        if principal.kind == "staff":
            staff = await repo.get_staff(conn, account_id)
            if staff is None:
                raise Problem(404, "Not found")
            return {"id": str(staff.id), "kind": "staff", "username": staff.username,
                    "first_name": staff.first_name, "last_name": staff.last_name,
                    "email": staff.email, "roles": list(staff.roles), "status": staff.status}
        customer = await repo.get_customer(conn, account_id)
    if customer is None:
        raise Problem(404, "Not found")
    return {"kind": "customer", **_customer_view(customer)}


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


@router.post("/v1/me/password", status_code=204, tags=["me"])
async def change_password(
    body: PasswordChange, pool: Pool, ids: Ids,
    principal: Annotated[Principal, Depends(any_principal)],
) -> Response:
    """The one thing a temporary password's token may do."""
    async with pool.acquire() as conn:
        await service.check_session(conn, str(principal.claims.get("sid", "")))
    await service.change_password(
        pool, ids, account_id=principal.id, kind=principal.kind,
        current_password=body.current_password, new_password=body.new_password)
    return Response(status_code=204)


# -- customers (staff) -----------------------------------------------------------------------


def _customer_view(c: Customer) -> dict[str, Any]:
    return {
        "id": str(c.id), "username": c.username, "first_name": c.first_name,
        "last_name": c.last_name,
        "date_of_birth": c.date_of_birth.isoformat() if c.date_of_birth else None,
        "email": c.email, "ssn_last4": c.ssn_last4, "status": c.status,
        "password_change_required": c.password_change_required,
        "identifiers": [{"kind": k, "value": v} for k, v in c.identifiers],
    }


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
    created = await customers.create_customer(
        pool, ids, cmd, staff_id=staff.id, idempotency_key=idempotency_key)
    return CreatedCustomer.model_validate(created.body())


@router.get("/v1/customers/{account_id}", tags=["customers"])
async def get_customer(account_id: uuid.UUID, pool: Pool, staff: Staff) -> dict[str, Any]:
    async with transaction(pool) as conn:
        customer = await customers.view_customer(conn, account_id, staff_id=staff.id)
    return _customer_view(customer)


@router.post("/v1/customers/{account_id}/password-reset", tags=["customers"])
async def reset_password(
    account_id: uuid.UUID, pool: Pool, ids: Ids, staff: Staff
) -> dict[str, Any]:
    password, expires_at = await customers.reset_password_by_staff(
        pool, ids, account_id, staff_id=staff.id)
    return {"id": str(account_id), "temporary_password": password,
            "password_expires_at": expires_at.isoformat()}


# -- self-service recovery ---------------------------------------------------------------------


class RecoveryRequest(BaseModel):
    email: str = Field(min_length=3, max_length=320)


class RecoveryCompletion(BaseModel):
    token: str = Field(min_length=10, max_length=200)
    new_password: str = Field(min_length=1, max_length=1024)


@router.post("/v1/password-recovery", status_code=202, tags=["recovery"])
async def request_recovery(body: RecoveryRequest, pool: Pool, ids: Ids) -> dict[str, str]:
    """The same answer whether or not the email is known."""
    async with transaction(pool) as conn:
        await customers.request_recovery(conn, ids, body.email)
    return {"status": "if the email belongs to an account, a link is on its way"}


@router.post("/v1/password-recovery/complete", status_code=204, tags=["recovery"])
async def complete_recovery(body: RecoveryCompletion, pool: Pool, ids: Ids) -> Response:
    await customers.complete_recovery(pool, ids, body.token, body.new_password)
    return Response(status_code=204)
