"""Public self-registration (a person creates their own account), and the
registrations held for staff because the person may already have one."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from identity.api.common import Ids, Staff, door_limit
from identity.service import registration
from shared.servicekit.errors import FieldError, InvalidInput
from shared.servicekit.paging import cursor_key, encode_cursor
from shared.servicekit.runtime import Pool

router = APIRouter()


class RegistrationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=100)
    password: str = Field(max_length=1024)
    first_name: str = Field(max_length=200)
    last_name: str = Field(max_length=200)
    date_of_birth: date
    email: str | None = Field(default=None, max_length=320)
    ssn: str | None = Field(default=None, max_length=20)


RECEIVED = (
    "Thank you. If you are new to us, your account is ready: sign in with the username"
    " and password you chose. If you cannot, you may already have an account: check"
    " your email (\"Forgot your password?\") or see staff at your local office."
)


class RegistrationReceived(BaseModel):
    """The one answer to every registration that was well formed: it does not say
    whether an account was made (signing in with the chosen password does)."""

    status: Literal["received"] = "received"
    detail: str = RECEIVED


@router.post("/v1/registrations", status_code=202, tags=["matching"],
             dependencies=[door_limit("registration")])
async def register(body: RegistrationBody, pool: Pool, ids: Ids) -> RegistrationReceived:
    """Public: a person creates their own account. A strong match or a known email
    makes none (the attempt is held for staff), and the answer is the same."""
    reg = registration.Registration(
        username=body.username, password=body.password, first_name=body.first_name,
        last_name=body.last_name, date_of_birth=body.date_of_birth, email=body.email,
        ssn=body.ssn)
    await registration.register(pool, ids, reg)
    return RegistrationReceived()


# -- registrations held for staff ----------------------------------------------------


class HeldView(BaseModel):
    id: int
    account_id: uuid.UUID
    reason: str
    score: float | None
    evidence: Any
    username: str
    first_name: str
    last_name: str
    date_of_birth: str | None
    email: str | None
    status: str
    found_at: str


class HeldPage(BaseModel):
    items: list[HeldView]
    next_cursor: str | None


@router.get("/v1/held-registrations", tags=["duplicates"])
async def list_held(
    pool: Pool, staff: Staff,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> HeldPage:
    """Self-registrations that made no account because the person may already have
    one (``strong-match``) or gave an email already on one (``email-in-use``), oldest
    first, each with the account it may be."""
    after = None
    if cursor:
        reason = "is not a cursor of this list"
        (last,) = cursor_key(cursor, 1, reason=reason)
        if not isinstance(last, int):
            raise InvalidInput([FieldError("cursor", reason)])
        after = last
    items = await registration.held_registrations(pool, limit=limit, after=after)
    return HeldPage(
        items=[HeldView(
            id=h.id, account_id=h.account_id, reason=h.reason, score=h.score,
            evidence=h.evidence, username=h.username, first_name=h.first_name,
            last_name=h.last_name,
            date_of_birth=h.date_of_birth.isoformat() if h.date_of_birth else None,
            email=h.email,
            status=h.status, found_at=h.found_at.isoformat()) for h in items],
        next_cursor=encode_cursor(items[-1].id) if len(items) == limit else None)


@router.post("/v1/held-registrations/{held_id}/dismiss", status_code=204,
             tags=["duplicates"], response_class=Response)
async def dismiss_held(
    held_id: Annotated[int, Path(ge=1, le=2**63 - 1)], pool: Pool, staff: Staff
) -> None:
    """Staff dealt with it (reached the person, or it was nobody's)."""
    await registration.dismiss_held(pool, held_id, staff_id=staff.id)
