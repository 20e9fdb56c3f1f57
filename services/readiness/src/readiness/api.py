"""readiness's routes: thin (parse, call a use case, shape the answer)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from readiness import service
from readiness.deps import (
    Deps,
    FeedClient,
    FeedTokenRejected,
    GroupNotReached,
    GroupsUnavailable,
    verify_feed_token,
)
from readiness.domain import BadLine, decode_line
from readiness.service import DashboardQuery, IngestResult
from shared.servicekit.auth import Principal, require_customer, require_staff
from shared.servicekit.db import transaction
from shared.servicekit.errors import DomainError
from shared.servicekit.http import PROBLEM_BASE, Problem
from shared.servicekit.runtime import Pool, get_deps

router = APIRouter(tags=["readiness"])
DepsDep = Annotated[Deps, Depends(get_deps)]
Staff = Annotated[Principal, require_staff()]
Admin = Annotated[Principal, require_staff("admin")]
Customer = Annotated[Principal, require_customer()]
CODE = r"^[a-z0-9][a-z0-9-]{0,63}$"


def problem(exc: DomainError) -> Problem | None:
    if isinstance(exc, GroupsUnavailable):
        return Problem(503, "Groups unavailable",
                       "Who may see this cannot be checked right now; try again in a moment.",
                       type_=PROBLEM_BASE + "groups-unavailable", headers={"Retry-After": "5"})
    if isinstance(exc, GroupNotReached):
        return Problem(404, "Not found", "group not found")
    return None


def bearer(request: Request) -> str:
    return request.headers.get("authorization", "").partition(" ")[2].strip()


# -- models ---------------------------------------------------------------------------

class AssessmentResult(BaseModel):
    record_id: str
    version: str
    completed_at: datetime
    scores: dict[str, float]
    summary: str | None


class Assessment(AssessmentResult):
    code: str
    name: str
    history: list[AssessmentResult] = Field(description="Every completion, newest first.")


class ModuleAttempt(BaseModel):
    record_id: str
    score: float
    attempt: int
    completed_at: datetime


class Module(BaseModel):
    code: str
    name: str
    score: float = Field(description="The latest attempt's score.")
    attempt: int
    completed_at: datetime
    best_score: float
    attempts: list[ModuleAttempt]


class PlanStep(BaseModel):
    title: str
    due_on: date | None
    status: Literal["not_started", "in_progress", "completed"]


class Plan(BaseModel):
    record_id: str
    updated_at: datetime
    goals: list[str]
    steps: list[PlanStep]


class Employment101(BaseModel):
    modules: list[Module]
    plan: Plan | None


class Outcome(BaseModel):
    record_id: str
    outcome_kind: Literal["certificate", "credential", "diploma", "employment"]
    title: str
    issuer: str
    issued_on: date
    credential_id: str | None


class Readiness(BaseModel):
    assessments: list[Assessment]
    employment101: Employment101
    outcomes: list[Outcome]


class FeedError(BaseModel):
    line: int | None
    record_id: str | None
    reason: str


class FeedAnswer(BaseModel):
    received: int
    accepted: int = Field(description="New records.")
    replaced: int = Field(description="Known record ids replaced by a later occurred_at.")
    unchanged: int = Field(description="Duplicates, and versions older than the one kept.")
    rejected: int
    errors: list[FeedError] = Field(description="The first 100 rejected lines and why.")


class CatalogueEntry(BaseModel):
    code: str
    name: str
    description: str | None
    position: int
    active: bool


class CatalogueAnswer(BaseModel):
    assessments: list[CatalogueEntry]
    modules: list[CatalogueEntry]


class CatalogueEntryIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    position: int = Field(default=0, ge=0, le=10_000)
    active: bool = True


class DashboardAssessment(BaseModel):
    code: str
    name: str
    completed: int
    not_completed: int


class Dashboard(BaseModel):
    group_id: UUID
    members: int
    assessments: list[DashboardAssessment]


class Person(BaseModel):
    customer_id: UUID
    first_name: str | None
    last_name: str | None
    status: Literal["completed", "not_completed"]
    completed_at: datetime | None


class People(BaseModel):
    items: list[Person]
    next_cursor: str | None


class ReminderIn(BaseModel):
    assessment_code: str = Field(pattern=CODE)
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=100_000)


class ReminderAnswer(BaseModel):
    message_id: UUID | str
    recipients: int


class RejectedRecord(BaseModel):
    id: int
    source: str
    line: int | None
    record_id: str | None
    kind: str | None
    reason: str
    received_at: datetime


class RejectedList(BaseModel):
    items: list[RejectedRecord]
    next_cursor: str | None


# -- the feed ----------------------------------------------------------------------------

async def feed_client(request: Request) -> FeedClient:
    token = bearer(request)
    if request.headers.get("authorization", "").partition(" ")[0].lower() != "bearer" \
            or not token:
        raise Problem(401, "Unauthorized", "a bearer token is required",
                      type_=PROBLEM_BASE + "unauthorized",
                      headers={"WWW-Authenticate": "Bearer"})
    settings = request.app.state.settings
    try:
        return await verify_feed_token(request.app.state.verifier, token, settings.feed_scope)
    except FeedTokenRejected as exc:
        if exc.status == 401:
            raise Problem(401, "Unauthorized", exc.reason, type_=PROBLEM_BASE + "unauthorized",
                          headers={"WWW-Authenticate": "Bearer"}) from None
        raise Problem(403, "Forbidden", exc.reason, type_=PROBLEM_BASE + "forbidden") from None


@router.post("/v1/feeds/readiness", response_model=FeedAnswer,
             summary="Readiness records as NDJSON (one record a line), streamed")
async def feed(request: Request, client: Annotated[FeedClient, Depends(feed_client)],
               deps: DepsDep, pool: Pool) -> FeedAnswer:
    batch_size = deps.settings.feed_batch_records
    max_line = deps.settings.feed_max_line_bytes
    total = IngestResult()
    errors: list[FeedError] = []
    in_flight: asyncio.Task[None] | None = None

    async def write(items: list[tuple[int | None, Any]]) -> None:
        async with transaction(pool) as conn:
            result, screened = await service.ingest(conn, deps, items, "feed")
        total.add(result)
        for r in screened.rejected[: max(0, 100 - len(errors))]:
            errors.append(FeedError(line=r.line, record_id=r.record_id, reason=r.reason))

    async def flush(items: list[tuple[int | None, Any]]) -> None:
        # parse the next batch while this one is written (one write in flight)
        nonlocal in_flight
        if in_flight is not None:
            await in_flight
        in_flight = asyncio.create_task(write(items))

    batch: list[tuple[int | None, Any]] = []
    buf = b""
    line_no = 0
    skipping = False  # inside a line longer than max_line
    try:
        async for chunk in request.stream():
            buf += chunk
            if b"\n" not in chunk:
                if len(buf) > max_line and not skipping:
                    skipping = True
                    line_no += 1
                    batch.append((line_no, BadLine(f"line longer than {max_line} bytes",
                                                   buf[:200].decode("utf-8", "replace"))))
                if skipping:
                    buf = b""
                continue
            parts = buf.split(b"\n")
            buf = parts.pop()
            for part in parts:
                if skipping:
                    skipping = False
                    continue
                line_no += 1
                if len(part) > max_line:
                    batch.append((line_no, BadLine(f"line longer than {max_line} bytes",
                                                   part[:200].decode("utf-8", "replace"))))
                elif part.strip():
                    batch.append((line_no, decode_line(part)))
            if len(batch) >= batch_size:
                await flush(batch)
                batch = []
        if buf.strip() and not skipping:
            line_no += 1
            batch.append((line_no, decode_line(buf)))
        if batch:
            await flush(batch)
        if in_flight is not None:
            await in_flight
    finally:
        if in_flight is not None and not in_flight.done():
            in_flight.cancel()
    return FeedAnswer(received=total.received, accepted=total.accepted,
                      replaced=total.replaced, unchanged=total.unchanged,
                      rejected=total.rejected, errors=errors)


@router.get("/v1/feeds/readiness/rejected", response_model=RejectedList,
            summary="Records the feed and the topic could not accept, newest first (admin)")
async def rejected(admin: Admin, pool: Pool, cursor: str | None = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> RejectedList:
    after = int(cursor) if cursor and cursor.isdigit() else None
    async with transaction(pool) as conn:
        rows = await service.rejected(conn, after, limit + 1)
    items = [RejectedRecord(**r) for r in rows[:limit]]
    nxt = str(items[-1].id) if len(rows) > limit else None
    return RejectedList(items=items, next_cursor=nxt)


# -- per customer ----------------------------------------------------------------------------

@router.get("/v1/customers/{customer_id}/readiness", response_model=Readiness)
async def customer_readiness(customer_id: UUID, request: Request, staff: Staff,
                             deps: DepsDep, pool: Pool) -> Any:
    await service.require_customer_access(deps, bearer(request), customer_id)
    async with transaction(pool) as conn:
        return await service.customer_readiness(conn, deps, staff.actor, customer_id)


@router.get("/v1/me/readiness", response_model=Readiness)
async def my_readiness(customer: Customer, pool: Pool) -> Any:
    async with transaction(pool) as conn:
        return await service.readiness_of(conn, customer.id)


# -- catalogue ------------------------------------------------------------------------------------

@router.get("/v1/catalogue", response_model=CatalogueAnswer)
async def get_catalogue(staff: Staff, pool: Pool) -> Any:
    async with transaction(pool) as conn:
        return await service.catalogue(conn)


@router.put("/v1/catalogue/{which}/{code}", response_model=CatalogueEntry,
            summary="Add or change an assessment or Employment 101 module (admin)")
async def put_catalogue(
    which: Literal["assessments", "modules"],
    code: Annotated[str, Path(pattern=CODE)],
    body: CatalogueEntryIn, admin: Admin, deps: DepsDep, pool: Pool, response: Response,
) -> Any:
    async with transaction(pool) as conn:
        created = await service.put_catalogue_entry(
            conn, deps, admin.actor, which, code, body.name, body.description, body.position,
            body.active)
    response.status_code = 201 if created else 200
    return {"code": code, **body.model_dump()}


# -- the Assessment Dashboard ---------------------------------------------------------------------

async def dashboard_query(
    group_id: UUID,
    include_subgroups: bool = True,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: date | None = None,
) -> DashboardQuery:
    return DashboardQuery(group_id, include_subgroups, from_, to)


Q = Annotated[DashboardQuery, Depends(dashboard_query)]


@router.get("/v1/groups/{group_id}/assessment-dashboard", response_model=Dashboard)
async def assessment_dashboard(q: Q, request: Request, staff: Staff, deps: DepsDep,
                               pool: Pool) -> Any:
    await service.require_group_access(deps, bearer(request), q.group_id)
    async with transaction(pool) as conn:
        return await service.dashboard(conn, deps, q)


@router.get("/v1/groups/{group_id}/assessment-dashboard/{code}", response_model=People,
            responses={200: {"content": {"text/csv": {}}}})
async def assessment_people(
    q: Q, code: Annotated[str, Path(pattern=CODE)], request: Request, staff: Staff,
    deps: DepsDep, pool: Pool,
    status: Literal["completed", "not_completed"] | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    format: Literal["json", "csv"] = "json",
) -> Any:
    await service.require_group_access(deps, bearer(request), q.group_id)
    async with transaction(pool) as conn:
        if format == "csv":
            text = await service.dashboard_csv(conn, deps, staff.actor, q, code, status)
            name = f"assessment-{code}-{q.group_id}.csv"
            return Response(text, media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
        items, nxt = await service.dashboard_people(conn, deps, q, code, status, cursor, limit)
    return {"items": items, "next_cursor": nxt}


@router.post("/v1/groups/{group_id}/assessment-dashboard/reminders", status_code=202,
             response_model=ReminderAnswer)
async def remind(q: Q, body: ReminderIn, request: Request, staff: Staff, deps: DepsDep,
                 pool: Pool) -> Any:
    await service.require_group_access(deps, bearer(request), q.group_id)
    async with transaction(pool) as conn:
        ids = await service.non_completers(conn, deps, q, body.assessment_code)
    sent = await service.send_reminder(deps, bearer(request), q, ids, body.subject, body.body)
    async with transaction(pool) as conn:
        await service.record_reminder(conn, staff.actor, q, body.assessment_code,
                                      sent.get("message_id"), ids)
    return {"message_id": sent.get("message_id"),
            "recipients": sent.get("recipients", len(ids))}
