"""What enrollment's route modules share: who is calling, the deps, paging, and the
answer shapes more than one of them returns (no routes here). Each answer model
documents the route's JSON; views fill them, and a route answers only the keys its
view set (``response_model_exclude_unset``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Body, Depends, Path, Query, Request
from pydantic import BaseModel

from enrollment.deps import Deps
from enrollment.domain.programs import MAX_CURSOR, MAX_LIMIT
from enrollment.domain.records import Actor, Enrollment, HistoryEntry
from enrollment.repository.identity import Candidate
from shared.servicekit.auth import Principal, require_customer, require_staff
from shared.servicekit.http import PROBLEM_BASE, Problem
from shared.servicekit.runtime import get_deps

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=MAX_CURSOR)]
ProgramCode = Annotated[str, Path(max_length=64)]
JsonObject = Annotated[dict[str, Any], Body()]
# every answer model: the keys the view set, no more
TYPED: dict[str, Any] = {"response_model_exclude_unset": True}


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


def doc(model: type[BaseModel]) -> dict[str, Any]:
    """The request body's schema for a route that takes the raw object (``JsonObject``)
    because its body model needs what only the use case knows (the path's code, today,
    the record, the reference codes): the use case validates it with that same model."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


def page(items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}


class HistoryView(BaseModel):
    at: str
    by: str | None
    action: str
    changes: dict[str, Any]


def history_view(h: HistoryEntry) -> dict[str, Any]:
    return {"at": h.at.isoformat(), "by": str(h.actor_id) if h.actor_id else None,
            "action": h.action, "changes": h.changes}


class EnrollmentView(BaseModel):
    enrollment_id: str
    program: str
    customer_id: str
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    status: str
    status_on: str
    status_reason: str | None = None
    added_by: str | None = None
    enrolled_on: str | None = None
    exited_on: str | None = None
    exit_reason: str | None = None
    exit_note: str | None = None
    created_at: str
    updated_at: str


class EnrollmentPage(BaseModel):
    items: list[EnrollmentView]
    next_cursor: str | None


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


def candidate_view(c: Candidate) -> dict[str, Any]:
    return c.model_dump(mode="json")
