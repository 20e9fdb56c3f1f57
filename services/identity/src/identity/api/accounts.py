"""Keys, tokens and the signed-in account: parse, call a use case, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from identity.api.common import CustomerView, Ids, address_of, customer_view
from identity.domain.accounts import FieldError, InvalidCredentials, InvalidInput
from identity.domain.records import Staff as StaffRecord
from identity.domain.tokens import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE
from identity.service import accounts as service
from identity.service import clients, limits
from shared.servicekit.auth import (
    JwksVerifier,
    Principal,
    TokenError,
    any_principal,
    current_principal,
)
from shared.servicekit.db import transaction
from shared.servicekit.http import Problem
from shared.servicekit.runtime import Pool

router = APIRouter()


# -- keys and tokens -----------------------------------------------------------------


class Jwks(BaseModel):
    """The public signing keys (RFC 7517): the active one and those still verifying."""

    keys: list[dict[str, str]]


@router.get("/.well-known/jwks.json", tags=["auth"])
async def jwks(ids: Ids, response: Response) -> Jwks:
    assert ids.keyring is not None
    response.headers["Cache-Control"] = "public, max-age=60"
    return Jwks.model_validate(ids.keyring.jwks())


class TokenAnswer(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int
    refresh_token: str | None = None
    password_change_required: bool = False
    issued_token_type: str | None = None


@router.post("/v1/auth/token", tags=["auth"], response_model_exclude_none=True)
async def token(
    request: Request, pool: Pool, ids: Ids,
    grant_type: Annotated[
        Literal["password", "refresh_token", "client_credentials",
                "urn:ietf:params:oauth:grant-type:token-exchange"], Form()] = "password",
    username: Annotated[str | None, Form(max_length=200)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    client_id: Annotated[str | None, Form(max_length=100)] = None,
    client_secret: Annotated[str | None, Form(max_length=200)] = None,
    subject_token: Annotated[str | None, Form(max_length=8192)] = None,
    subject_token_type: Annotated[str | None, Form(max_length=200)] = None,
    audience: Annotated[list[str] | None, Form(max_length=20)] = None,
) -> TokenAnswer:
    """OAuth2 password form (`username`, `password`), `grant_type=refresh_token`,
    `grant_type=client_credentials` (`client_id`, `client_secret`: a machine's token), or
    token exchange (RFC 8693: `subject_token`, `audience`: the same person's token
    narrowed to some of the services it is for, as a service calling another sends it)."""
    if grant_type in ("password", "client_credentials"):  # a guess at a secret
        await limits.count_door(pool, ids, "signin", address_of(request, ids))
    if grant_type == TOKEN_EXCHANGE:
        return await _exchange(request, pool, ids, subject_token, subject_token_type,
                               audience or [])
    if grant_type == "client_credentials":
        async with transaction(pool) as conn:
            access, ttl = await clients.client_token(conn, ids, client_id, client_secret)
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


async def _exchange(request: Request, pool: Pool, ids: Ids, subject_token: str | None,
                    subject_token_type: str | None, audience: list[str]) -> TokenAnswer:
    errors = []
    if not subject_token:
        errors.append(FieldError("subject_token", "is required"))
    if subject_token_type not in (None, ACCESS_TOKEN_TYPE):
        errors.append(FieldError("subject_token_type", f"must be {ACCESS_TOKEN_TYPE}"))
    wanted = [a for value in audience for a in value.replace(",", " ").split()]
    if not wanted:
        errors.append(FieldError("audience", "is required"))
    if errors:
        raise InvalidInput(errors)
    assert subject_token is not None
    verifier: JwksVerifier = request.app.state.verifier
    try:
        claims = await verifier.claims_for_exchange(subject_token)
    except TokenError:
        raise InvalidCredentials("invalid subject token") from None
    async with transaction(pool) as conn:
        access, ttl = await service.exchange(conn, ids, claims, wanted)
    return TokenAnswer(access_token=access, expires_in=ttl, issued_token_type=ACCESS_TOKEN_TYPE)


# -- the signed-in account ----------------------------------------------------------------


class StaffMe(BaseModel):
    id: uuid.UUID
    kind: Literal["staff"]
    username: str
    first_name: str
    last_name: str
    email: str | None
    roles: list[str]
    status: str


class CustomerMe(CustomerView):
    kind: Literal["customer"]


@router.get("/v1/me", tags=["me"])
async def me(
    principal: Annotated[Principal, Depends(current_principal)], pool: Pool
) -> StaffMe | CustomerMe:
    async with transaction(pool) as conn:
        account = await service.my_account(
            conn, principal.id, principal.kind, str(principal.claims.get("sid", "")))
    if account is None:
        raise Problem(404, "Not found")
    if isinstance(account, StaffRecord):
        return StaffMe(id=account.id, kind="staff", username=account.username,
                       first_name=account.first_name, last_name=account.last_name,
                       email=account.email, roles=list(account.roles), status=account.status)
    return CustomerMe(kind="customer", **customer_view(account).model_dump())


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


@router.post("/v1/me/password", status_code=204, tags=["me"], response_class=Response)
async def change_password(
    body: PasswordChange, pool: Pool, ids: Ids,
    principal: Annotated[Principal, Depends(any_principal)],
) -> None:
    """The one thing a temporary password's token may do."""
    async with pool.acquire() as conn:
        await service.check_session(conn, str(principal.claims.get("sid", "")))
    await service.change_password(
        pool, ids, account_id=principal.id, kind=principal.kind,
        current_password=body.current_password, new_password=body.new_password)


@router.post("/v1/me/sign-out", status_code=204, tags=["me"], response_class=Response)
async def sign_out(
    pool: Pool, principal: Annotated[Principal, Depends(any_principal)],
) -> None:
    """End this token's session: its refresh tokens stop working, and every service
    refuses its access tokens (within about a second) although they have not expired."""
    async with transaction(pool) as conn:
        await service.sign_out(conn, principal.session_id)
