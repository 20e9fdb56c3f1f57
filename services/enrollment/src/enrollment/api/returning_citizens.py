"""The Returning Citizens routes: Add Customer's two steps, the customer list, the
record and its changes, and the printable hand-out."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from enrollment.api.common import (
    TYPED,
    AppDeps,
    Cursor,
    HistoryView,
    JsonObject,
    Limit,
    Staff,
    candidate_view,
    doc,
    history_view,
    page,
)
from enrollment.domain.corrections import ReturningCitizenPatch
from enrollment.domain.programs import DEFAULT_LIMIT
from enrollment.domain.records import ReturningCitizen
from enrollment.domain.returning_citizens import AddCustomerForm, AddCustomerSubmit
from enrollment.service import add_customer, returning_citizens
from shared.contracts.identity import Candidate
from shared.servicekit.db import transaction
from shared.servicekit.runtime import Pool

router = APIRouter(tags=["returning citizens"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class HandoutBody(BaseModel):
    temporary_password: str | None = Field(default=None, max_length=200)
    password_expires_at: str | None = Field(default=None, max_length=64)


class CitizenView(BaseModel):
    enrollment_id: str
    customer_id: str
    username: str | None = None
    status: str
    idoc_number: str
    first_name: str
    last_name: str
    date_of_birth: str
    parent_institution: str
    counties_of_commitment: list[str]
    msr_date: str
    msr_county: str | None = None
    enrollment_date: str
    exited_on: str | None = None
    added_by: str
    created_at: str
    updated_at: str


class CitizenPage(BaseModel):
    items: list[CitizenView]
    next_cursor: str | None


class RecordView(CitizenView):
    offenses: list[str]
    labels: dict[str, dict[str, str]] = Field(description="names of the codes, by kind")
    history: list[HistoryView]


class Matches(BaseModel):
    candidates: list[Candidate]
    idoc_enrollments: list[CitizenView]
    open_enrollment_id: str | None
    offender_search_url: str


class Submitted(BaseModel):
    enrollment_id: str
    account_id: str
    account_created: bool
    username: str | None
    temporary_password: str | None = Field(default=None, description="a new account's, "
                                           "shown this once")
    password_expires_at: str | None = None
    handout_html: str


def citizen_view(rc: ReturningCitizen) -> dict[str, Any]:
    return {
        "enrollment_id": str(rc.enrollment_id), "customer_id": str(rc.customer_id),
        "username": rc.username, "status": rc.status, "idoc_number": rc.idoc_number,
        "first_name": rc.first_name, "last_name": rc.last_name,
        "date_of_birth": rc.date_of_birth.isoformat(),
        "parent_institution": rc.institution,
        "counties_of_commitment": list(rc.counties), "msr_date": rc.msr_date.isoformat(),
        "msr_county": rc.msr_county, "enrollment_date": rc.enrollment_date.isoformat(),
        "exited_on": rc.exited_on.isoformat() if rc.exited_on else None,
        "added_by": str(rc.added_by), "created_at": rc.created_at.isoformat(),
        "updated_at": rc.updated_at.isoformat(),
    }


def record_view(r: returning_citizens.Record) -> dict[str, Any]:
    labels: dict[str, dict[str, str]] = {"institutions": {}, "counties": {}, "offenses": {}}
    for key, name in r.names.items():
        kind, _, code = key.partition(":")
        labels.setdefault(kind, {})[code] = name
    return {**citizen_view(r.rc), "offenses": list(r.offenses), "labels": labels,
            "history": [history_view(h) for h in r.history]}


@router.post("/v1/returning-citizens/matches", openapi_extra=doc(AddCustomerForm),
             response_model=Matches, **TYPED)
async def match(body: JsonObject, pool: Pool, deps: AppDeps, staff: Staff) -> dict[str, Any]:
    """Step 1: check the whole form and find the person's existing accounts (and any
    Returning Citizens enrollment with the same IDOC number)."""
    found = await add_customer.match(pool, deps, staff, body)  # no connection held on identity
    open_one = next((e for e in found.enrollments if e.status != "exited"), None)
    return {
        "candidates": [candidate_view(c) for c in found.candidates],
        "idoc_enrollments": [citizen_view(e) for e in found.enrollments],
        "open_enrollment_id": str(open_one.enrollment_id) if open_one else None,
        "offender_search_url": deps.offender_search_url,
    }


@router.post("/v1/returning-citizens", status_code=201, openapi_extra=doc(AddCustomerSubmit),
             response_model=Submitted, **TYPED)
async def submit(
    body: JsonObject, pool: Pool, deps: AppDeps, staff: Staff, response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=100, description=(
        "required (else 428): one value per Add Customer form, the same on each retry"))
    ] = None,
) -> dict[str, Any]:
    """Step 2: link the accurate match (``link_account_id``) or create an account after
    rejecting every candidate (``rejected_account_ids``); then enroll. The temporary
    password is in this answer only (and in the hand-out it carries)."""
    response.headers.update(NO_STORE)
    # submit commits its own steps, and holds no connection while identity answers
    done = await add_customer.submit(pool, deps, staff, body, idempotency_key)
    answer: dict[str, Any] = {
        "enrollment_id": str(done.enrollment_id), "account_id": str(done.account_id),
        "account_created": done.account_created, "username": done.username,
    }
    if done.account_created:
        answer["temporary_password"] = done.temporary_password
        answer["password_expires_at"] = done.password_expires_at
    answer["handout_html"] = done.handout_html
    return answer


@router.get("/v1/returning-citizens", response_model=CitizenPage, **TYPED)
async def list_citizens(
    pool: Pool, staff: Staff,
    institution: Annotated[str | None, Query(max_length=64)] = None,
    msr_county: Annotated[str | None, Query(max_length=64)] = None,
    msr_from: Annotated[str | None, Query(max_length=10)] = None,
    msr_to: Annotated[str | None, Query(max_length=10)] = None,
    enrolled_from: Annotated[str | None, Query(max_length=10)] = None,
    enrolled_to: Annotated[str | None, Query(max_length=10)] = None,
    q: Annotated[str | None, Query(max_length=100, description="name or IDOC number")] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    sort: Annotated[str | None, Query(max_length=20, description=(
        "last_name (default), enrollment_date, msr_date, idoc_number or created; "
        "-name for descending"))] = None,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> dict[str, Any]:
    params = {"institution": institution, "msr_county": msr_county, "msr_from": msr_from,
              "msr_to": msr_to, "enrolled_from": enrolled_from, "enrolled_to": enrolled_to,
              "q": q, "status": status, "sort": sort}
    async with transaction(pool) as conn:
        found = await returning_citizens.list_citizens(conn, staff, params, cursor, limit)
    return page([citizen_view(r) for r in found.items], found.next_cursor)


@router.get("/v1/returning-citizens/{enrollment_id}", response_model=RecordView, **TYPED)
async def get_citizen(enrollment_id: uuid.UUID, pool: Pool, staff: Staff) -> dict[str, Any]:
    """The record with its offenses and history (this view is audited)."""
    async with transaction(pool) as conn:
        return record_view(await returning_citizens.view(conn, staff, enrollment_id))


@router.patch("/v1/returning-citizens/{enrollment_id}",
              openapi_extra=doc(ReturningCitizenPatch), response_model=RecordView, **TYPED)
async def patch_citizen(
    enrollment_id: uuid.UUID, body: JsonObject, pool: Pool, deps: AppDeps, staff: Staff
) -> dict[str, Any]:
    """Change the enrollment's facts; who changed what stays in the history."""
    async with transaction(pool) as conn:
        return record_view(await returning_citizens.patch(conn, deps, staff, enrollment_id, body))


@router.post("/v1/returning-citizens/{enrollment_id}/handout", response_class=HTMLResponse)
async def handout(
    enrollment_id: uuid.UUID, pool: Pool, deps: AppDeps, staff: Staff,
    body: HandoutBody | None = None,
) -> HTMLResponse:
    """A printable hand-out again (e.g. after identity reset the password): give the
    temporary password to print it; without one it tells how to sign in."""
    body = body or HandoutBody()
    async with transaction(pool) as conn:
        html = await returning_citizens.handout(
            conn, deps, staff, enrollment_id, temporary_password=body.temporary_password,
            password_expires_at=body.password_expires_at)
    return HTMLResponse(html, headers=NO_STORE)
