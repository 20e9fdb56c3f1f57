"""Enrollment's HTTP routes for programs, authorization, applications, participants and
reference data: parse, call a use case, shape the answer. The Add Customer routes are in
``enrollment.api_returning_citizens``."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from enrollment import participants, service
from enrollment.deps import Deps
from enrollment.domain import (
    DEFAULT_LIMIT,
    MAX_CURSOR,
    MAX_LIMIT,
    DomainError,
    FieldError,
    IdempotencyKeyReused,
    InvalidInput,
    PossibleDuplicates,
    ReferenceKind,
)
from enrollment.identity_client import Candidate, IdentityUnauthorized, IdentityUnavailable
from enrollment.records import Application, Authorization, Enrollment, HistoryEntry, Program
from enrollment.records import ReferenceEntry as Entry
from enrollment.service import Actor
from shared.servicekit.auth import Principal, current_principal, require_customer, require_staff
from shared.servicekit.db import transaction
from shared.servicekit.http import PROBLEM_BASE, Problem
from shared.servicekit.runtime import Pool, get_deps

router = APIRouter()

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR)]
ProgramCode = Annotated[str, Path(max_length=64)]


def _actor(principal: Principal, request: Request) -> Actor:
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    try:
        subject = uuid.UUID(principal.subject)
    except ValueError:
        raise Problem(401, "Unauthorized", "the token's subject is not an account id",
                      type_=PROBLEM_BASE + "unauthorized") from None
    return Actor(subject, principal.kind, principal.roles, token)


async def staff_actor(
    request: Request, principal: Annotated[Principal, require_staff()]
) -> Actor:
    return _actor(principal, request)


async def admin_actor(
    request: Request, principal: Annotated[Principal, require_staff("admin")]
) -> Actor:
    return _actor(principal, request)


async def customer_actor(
    request: Request, principal: Annotated[Principal, require_customer()]
) -> Actor:
    return _actor(principal, request)


Staff = Annotated[Actor, Depends(staff_actor)]
Admin = Annotated[Actor, Depends(admin_actor)]
Customer = Annotated[Actor, Depends(customer_actor)]
AppDeps = Annotated[Deps, Depends(get_deps)]
JsonObject = Annotated[dict[str, Any], Body()]


def problem(exc: DomainError) -> Problem | None:
    """Enrollment's own domain errors as HTTP answers; None: the kit maps the standard ones."""
    if isinstance(exc, IdempotencyKeyReused):
        return Problem(422, "Idempotency-Key reused", exc.reason, type_=PROBLEM_BASE + exc.code)
    if isinstance(exc, PossibleDuplicates):
        return Problem(409, "Conflict", exc.reason, type_=PROBLEM_BASE + exc.code,
                       candidates=[candidate_view(c) for c in exc.candidates])
    if isinstance(exc, IdentityUnavailable):
        return Problem(503, "Identity unavailable",
                       f"The identity service is unavailable ({exc}); nothing was saved. "
                       "Try again in a moment.", type_=PROBLEM_BASE + "identity-unavailable",
                       headers={"Retry-After": "5"})
    if isinstance(exc, IdentityUnauthorized):
        return Problem(401, "Unauthorized", "identity refused the token; sign in again",
                       type_=PROBLEM_BASE + "unauthorized",
                       headers={"WWW-Authenticate": "Bearer"})
    return None


def page(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}


# -- shapes -------------------------------------------------------------------------


def program_view(p: Program) -> dict[str, Any]:
    return {"code": p.code, "name": p.name, "description": p.description,
            "open_for_applications": p.open_for_applications,
            "questions_version": p.questions_version,
            "questions": [q.as_dict() for q in p.questions],
            "updated_at": p.updated_at.isoformat()}


def entry_view(e: Entry) -> dict[str, Any]:
    out: dict[str, Any] = {"code": e.code, "name": e.name, "retired": e.retired}
    if e.external_code:
        out["fips"] = e.external_code
    return out


def enrollment_view(e: Enrollment) -> dict[str, Any]:
    return {
        "enrollment_id": str(e.id), "program": e.program, "customer_id": str(e.customer_id),
        "username": e.username, "first_name": e.first_name, "last_name": e.last_name,
        "status": e.status, "status_on": e.status_on.isoformat(),
        "status_reason": e.status_reason,
        "added_by": str(e.added_by) if e.added_by else None,
        "enrolled_on": e.enrolled_on.isoformat() if e.enrolled_on else None,
        "exited_on": e.exited_on.isoformat() if e.exited_on else None,
        "exit_reason": e.exit_reason, "exit_note": e.exit_note,
        "created_at": e.created_at.isoformat(), "updated_at": e.updated_at.isoformat(),
    }


def history_view(h: HistoryEntry) -> dict[str, Any]:
    return {"at": h.at.isoformat(), "by": str(h.actor_id) if h.actor_id else None,
            "action": h.action, "changes": h.changes}


def application_view(a: Application) -> dict[str, Any]:
    return {"application_id": str(a.id), "questions_version": a.questions_version,
            "answers": a.answers, "submitted_at": a.submitted_at.isoformat()}


def authorization_view(a: Authorization) -> dict[str, Any]:
    return {"staff_id": str(a.staff_id), "username": a.username, "name": a.name,
            "granted_by": str(a.granted_by), "granted_at": a.granted_at.isoformat()}


def candidate_view(c: Candidate) -> dict[str, Any]:
    return c.model_dump(mode="json")


# -- programs --------------------------------------------------------------------------


@router.get("/v1/programs", tags=["programs"])
async def list_programs(
    pool: Pool, _: Annotated[Principal, Depends(current_principal)],
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        found = await service.list_programs(conn, cursor, limit)
    return page([program_view(p) for p in found.items], found.next_cursor)


@router.get("/v1/programs/{code}", tags=["programs"])
async def get_program(
    code: ProgramCode, pool: Pool, _: Annotated[Principal, Depends(current_principal)]
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        return program_view(await service.get_program(conn, code))


class ProgramBody(BaseModel):
    """For the documentation; the route checks the raw object so every error comes at once."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    open_for_applications: bool = False
    questions: list[dict[str, Any]] | None = Field(
        default=None, description="key, label, type (text, yes_no, date, number, choice, "
        "multi_choice), required, options; a changed list is the next version")


def _doc(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


@router.put("/v1/programs/{code}", tags=["programs"], openapi_extra=_doc(ProgramBody))
async def put_program(
    code: ProgramCode, body: JsonObject, pool: Pool, admin: Admin, response: Response
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        program, created = await service.put_program(conn, code, body, admin)
    response.status_code = 201 if created else 200
    return program_view(program)


@router.get("/v1/programs/{code}/staff", tags=["authorization"])
async def list_program_staff(
    code: ProgramCode, pool: Pool, _: Admin, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        found = await service.list_program_staff(conn, code, cursor, limit)
    return page([authorization_view(a) for a in found.items], found.next_cursor)


@router.put("/v1/programs/{code}/staff/{staff_id}", tags=["authorization"])
async def authorize_staff(
    code: ProgramCode, staff_id: uuid.UUID, pool: Pool, deps: AppDeps, admin: Admin,
    response: Response,
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        created = await service.authorize_staff(conn, deps, code, staff_id, admin)
    response.status_code = 201 if created else 200
    return {"program": code, "staff_id": str(staff_id), "authorized": True}


@router.delete("/v1/programs/{code}/staff/{staff_id}", status_code=204, tags=["authorization"])
async def revoke_staff(
    code: ProgramCode, staff_id: uuid.UUID, pool: Pool, deps: AppDeps, admin: Admin
) -> Response:
    async with transaction(pool) as conn:
        await service.revoke_staff(conn, deps, code, staff_id, admin)
    return Response(status_code=204)


class ApplicationBody(BaseModel):
    answers: dict[str, Any] = Field(default_factory=dict,
                                    description="answers by question key")


@router.post("/v1/programs/{code}/applications", status_code=201, tags=["applications"],
             openapi_extra=_doc(ApplicationBody))
async def apply(
    code: ProgramCode, body: JsonObject, pool: Pool, deps: AppDeps, customer: Customer
) -> dict[str, Any]:
    if set(body) - {"answers"}:
        raise InvalidInput([FieldError("body", "only answers may be sent")])
    async with transaction(pool) as conn:
        application_id, enrollment = await participants.apply(
            conn, deps, code, customer, body.get("answers"))
    return {"application_id": str(application_id), **enrollment_view(enrollment)}


class InviteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: uuid.UUID
    reason: str | None = Field(default=None, max_length=500)


@router.post("/v1/programs/{code}/participants", status_code=201, tags=["participants"])
async def invite(
    code: ProgramCode, body: InviteBody, pool: Pool, deps: AppDeps, staff: Staff
) -> dict[str, Any]:
    """A case worker adds a customer, who can then complete the application."""
    async with transaction(pool) as conn:
        enrollment = await participants.invite(
            conn, deps, code, body.customer_id, staff, body.reason)
    return enrollment_view(enrollment)


@router.get("/v1/programs/{code}/participants", tags=["participants"])
async def list_participants(
    code: ProgramCode, pool: Pool, staff: Staff,
    status: Annotated[str | None, Query(pattern="^(invited|applied|enrolled|exited)$")] = None,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        found = await participants.list_participants(conn, code, staff, status=status,
                                                cursor=cursor, limit=limit)
    return page([enrollment_view(e) for e in found.items], found.next_cursor)


@router.get("/v1/programs/{code}/participants/{enrollment_id}", tags=["participants"])
async def get_participant(
    code: ProgramCode, enrollment_id: uuid.UUID, pool: Pool, staff: Staff
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        e, applications, history = await participants.get_participant(conn, code, enrollment_id,
                                                                  staff)
    return {**enrollment_view(e), "applications": [application_view(a) for a in applications],
            "history": [history_view(h) for h in history]}


class StatusBody(BaseModel):
    status: str = Field(description="enrolled or exited")
    on: str = Field(description="YYYY-MM-DD, not in the future")
    reason: str | None = Field(default=None, description="for an exit: completed, withdrew, "
                               "ineligible, transferred, deceased or other")
    note: str | None = None


@router.post("/v1/programs/{code}/participants/{enrollment_id}/status", tags=["participants"],
             openapi_extra=_doc(StatusBody))
async def change_status(
    code: ProgramCode, enrollment_id: uuid.UUID, body: JsonObject, pool: Pool, deps: AppDeps,
    staff: Staff,
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        e = await participants.change_status(conn, deps, code, enrollment_id, body, staff)
    return enrollment_view(e)


@router.get("/v1/me/enrollments", tags=["applications"])
async def my_enrollments(
    pool: Pool, customer: Customer, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> dict[str, Any]:
    """The customer's own invitations, applications and enrollments."""
    async with transaction(pool) as conn:
        found = await participants.my_enrollments(conn, customer, cursor, limit)
    return page([enrollment_view(e) for e in found.items], found.next_cursor)


# -- reference data ---------------------------------------------------------------------


@router.get("/v1/reference/{kind}", tags=["reference data"])
async def list_reference(
    kind: ReferenceKind, pool: Pool, _: Staff, include_retired: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = MAX_LIMIT, cursor: Cursor = None,
) -> dict[str, Any]:
    """Entries offered for new records (with ``include_retired``, the retired ones too)."""
    async with transaction(pool) as conn:
        found = await service.list_reference(conn, kind, include_retired=include_retired,
                                             cursor=cursor, limit=limit)
    return page([entry_view(e) for e in found.items], found.next_cursor)


class ReferenceBody(BaseModel):
    name: str
    retired: bool = False


@router.put("/v1/reference/{kind}/{code}", tags=["reference data"],
            openapi_extra=_doc(ReferenceBody))
async def put_reference(
    kind: ReferenceKind, code: Annotated[str, Path(max_length=64)], body: JsonObject,
    pool: Pool, admin: Admin, response: Response,
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        entry, created = await service.put_reference(conn, kind, code, body, admin)
    response.status_code = 201 if created else 200
    return entry_view(entry)
