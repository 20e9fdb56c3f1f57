"""A program's participants: a case worker's invitation, the customer's application,
status changes, and the views: parse, call a use case, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from enrollment.api.common import (
    TYPED,
    AppDeps,
    Cursor,
    Customer,
    EnrollmentPage,
    EnrollmentView,
    HistoryView,
    JsonObject,
    Limit,
    ProgramCode,
    Staff,
    doc,
    enrollment_view,
    history_view,
    page,
)
from enrollment.domain.programs import DEFAULT_LIMIT, ApplicationBody, StatusBody
from enrollment.domain.records import Application
from enrollment.service import participants
from shared.servicekit.db import transaction
from shared.servicekit.runtime import Pool

router = APIRouter()


class ApplicationView(BaseModel):
    application_id: str
    questions_version: int
    answers: dict[str, Any]
    submitted_at: str


class Applied(EnrollmentView):
    application_id: str


class ParticipantView(EnrollmentView):
    applications: list[ApplicationView]
    history: list[HistoryView]


def application_view(a: Application) -> dict[str, Any]:
    return {"application_id": str(a.id), "questions_version": a.questions_version,
            "answers": a.answers, "submitted_at": a.submitted_at.isoformat()}


@router.post("/v1/programs/{code}/applications", status_code=201, tags=["applications"],
             openapi_extra=doc(ApplicationBody), response_model=Applied, **TYPED)
async def apply(
    code: ProgramCode, body: JsonObject, pool: Pool, deps: AppDeps, customer: Customer
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        application_id, enrollment = await participants.apply(conn, deps, code, customer, body)
    return {"application_id": str(application_id), **enrollment_view(enrollment)}


class InviteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: uuid.UUID
    reason: str | None = Field(default=None, max_length=500)


@router.post("/v1/programs/{code}/participants", status_code=201, tags=["participants"],
             response_model=EnrollmentView, **TYPED)
async def invite(
    code: ProgramCode, body: InviteBody, pool: Pool, deps: AppDeps, staff: Staff
) -> dict[str, Any]:
    """A case worker adds a customer, who can then complete the application."""
    async with transaction(pool) as conn:
        enrollment = await participants.invite(
            conn, deps, code, body.customer_id, staff, body.reason)
    return enrollment_view(enrollment)


@router.get("/v1/programs/{code}/participants", tags=["participants"],
            response_model=EnrollmentPage, **TYPED)
async def list_participants(
    code: ProgramCode, pool: Pool, staff: Staff,
    status: Annotated[str | None, Query(pattern="^(invited|applied|enrolled|exited)$")] = None,
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        found = await participants.list_participants(conn, code, staff, status=status,
                                                cursor=cursor, limit=limit)
    return page([enrollment_view(e) for e in found.items], found.next_cursor)


@router.get("/v1/programs/{code}/participants/{enrollment_id}", tags=["participants"],
            response_model=ParticipantView, **TYPED)
async def get_participant(
    code: ProgramCode, enrollment_id: uuid.UUID, pool: Pool, staff: Staff
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        e, applications, history = await participants.get_participant(conn, code, enrollment_id,
                                                                  staff)
    return {**enrollment_view(e), "applications": [application_view(a) for a in applications],
            "history": [history_view(h) for h in history]}


@router.post("/v1/programs/{code}/participants/{enrollment_id}/status", tags=["participants"],
             openapi_extra=doc(StatusBody), response_model=EnrollmentView, **TYPED)
async def change_status(
    code: ProgramCode, enrollment_id: uuid.UUID, body: JsonObject, pool: Pool, deps: AppDeps,
    staff: Staff,
) -> dict[str, Any]:
    async with transaction(pool) as conn:
        e = await participants.change_status(conn, deps, code, enrollment_id, body, staff)
    return enrollment_view(e)


@router.get("/v1/me/enrollments", tags=["applications"], response_model=EnrollmentPage, **TYPED)
async def my_enrollments(
    pool: Pool, customer: Customer, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> dict[str, Any]:
    """The customer's own invitations, applications and enrollments."""
    async with transaction(pool) as conn:
        found = await participants.my_enrollments(conn, customer, cursor, limit)
    return page([enrollment_view(e) for e in found.items], found.next_cursor)

