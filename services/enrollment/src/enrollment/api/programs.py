"""Programs, staff authorization and reference data: parse, call a use case, shape
the answer."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from enrollment.api.common import (
    TYPED,
    Admin,
    AppDeps,
    Cursor,
    JsonObject,
    Limit,
    ProgramCode,
    Staff,
    doc,
    page,
)
from enrollment.domain.programs import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ProgramBody,
    ReferenceBody,
    ReferenceKind,
)
from enrollment.domain.records import Authorization, Program
from enrollment.domain.records import ReferenceEntry as Entry
from enrollment.service import programs as service
from shared.servicekit.auth import Principal, current_principal
from shared.servicekit.db import transaction
from shared.servicekit.runtime import Pool

router = APIRouter()


class QuestionView(BaseModel):
    key: str
    label: str
    type: str
    required: bool
    options: list[str] | None = None


class ProgramView(BaseModel):
    code: str
    name: str
    description: str
    open_for_applications: bool
    questions_version: int
    questions: list[QuestionView]
    updated_at: str


class ProgramPage(BaseModel):
    items: list[ProgramView]
    next_cursor: str | None


class EntryView(BaseModel):
    code: str
    name: str
    retired: bool
    fips: str | None = Field(default=None, description="counties: the FIPS code")


class EntryPage(BaseModel):
    items: list[EntryView]
    next_cursor: str | None


class AuthorizationView(BaseModel):
    staff_id: str
    username: str | None = None
    name: str | None = None
    granted_by: str
    granted_at: str


class AuthorizationPage(BaseModel):
    items: list[AuthorizationView]
    next_cursor: str | None


class Authorized(BaseModel):
    program: str
    staff_id: str
    authorized: bool


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


def authorization_view(a: Authorization) -> dict[str, Any]:
    return {"staff_id": str(a.staff_id), "username": a.username, "name": a.name,
            "granted_by": str(a.granted_by), "granted_at": a.granted_at.isoformat()}


# -- programs --------------------------------------------------------------------------


@router.get("/v1/programs", tags=["programs"], response_model=ProgramPage, **TYPED)
async def list_programs(
    pool: Pool, _: Annotated[Principal, Depends(current_principal)],
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        found = await service.list_programs(conn, cursor, limit)
    return page([program_view(p) for p in found.items], found.next_cursor)


@router.get("/v1/programs/{code}", tags=["programs"], response_model=ProgramView, **TYPED)
async def get_program(
    code: ProgramCode, pool: Pool, _: Annotated[Principal, Depends(current_principal)]
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        return program_view(await service.get_program(conn, code))


@router.put("/v1/programs/{code}", tags=["programs"], openapi_extra=doc(ProgramBody),
            response_model=ProgramView, **TYPED)
async def put_program(
    code: ProgramCode, body: JsonObject, pool: Pool, admin: Admin, response: Response
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        program, created = await service.put_program(conn, code, body, admin)
    response.status_code = 201 if created else 200
    return program_view(program)


@router.get("/v1/programs/{code}/staff", tags=["authorization"],
            response_model=AuthorizationPage, **TYPED)
async def list_program_staff(
    code: ProgramCode, pool: Pool, _: Admin, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        found = await service.list_program_staff(conn, code, cursor, limit)
    return page([authorization_view(a) for a in found.items], found.next_cursor)


@router.put("/v1/programs/{code}/staff/{staff_id}", tags=["authorization"],
            response_model=Authorized, **TYPED)
async def authorize_staff(
    code: ProgramCode, staff_id: uuid.UUID, pool: Pool, deps: AppDeps, admin: Admin,
    response: Response,
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        created = await service.authorize_staff(conn, deps, code, staff_id, admin)
    response.status_code = 201 if created else 200
    return {"program": code, "staff_id": str(staff_id), "authorized": True}


@router.delete("/v1/programs/{code}/staff/{staff_id}", status_code=204, tags=["authorization"],
               response_class=Response)
async def revoke_staff(
    code: ProgramCode, staff_id: uuid.UUID, pool: Pool, deps: AppDeps, admin: Admin
) -> Response:
    async with transaction(pool) as conn:
        await service.revoke_staff(conn, deps, code, staff_id, admin)
    return Response(status_code=204)


# -- reference data ---------------------------------------------------------------------


@router.get("/v1/reference/{kind}", tags=["reference data"], response_model=EntryPage, **TYPED)
async def list_reference(
    kind: ReferenceKind, pool: Pool, _: Staff, include_retired: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = MAX_LIMIT, cursor: Cursor = None,
) -> dict[str, Any]:
    """Entries offered for new records (with ``include_retired``, the retired ones too)."""
    async with transaction(pool) as conn:
        found = await service.list_reference(conn, kind, include_retired=include_retired,
                                             cursor=cursor, limit=limit)
    return page([entry_view(e) for e in found.items], found.next_cursor)


@router.put("/v1/reference/{kind}/{code}", tags=["reference data"],
            openapi_extra=doc(ReferenceBody), response_model=EntryView, **TYPED)
async def put_reference(
    kind: ReferenceKind, code: Annotated[str, Path(max_length=64)], body: JsonObject,
    pool: Pool, admin: Admin, response: Response,
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        entry, created = await service.put_reference(conn, kind, code, body, admin)
    response.status_code = 201 if created else 200
    return entry_view(entry)
