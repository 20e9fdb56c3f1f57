"""The console's queues and settings: possible duplicate accounts (merge, unmerge,
dismiss) and, for administrators, who is authorized for each program."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway import service
from gateway.api.web import DepsDep, StaffSession, check_csrf, form_data, page, redirect
from gateway.domain import FieldProblem, field_problems

router = APIRouter(prefix="/console", include_in_schema=False)
NOTICES = {"merged": "The accounts are merged.", "unmerged": "The merge is undone.",
           "dismissed": "The pair is off the queue: two different people.",
           "authorized": "The staff member is authorized.",
           "revoked": "The authorization is removed."}
PROBLEMS = {"merge": "That pair could not be merged: someone has already decided it. The "
                     "queue below is as it is now.",
            "dismiss": "That pair could not be taken off the queue: someone has already "
                       "decided it. The queue below is as it is now.",
            "unmerge": "That merge could not be undone: it was undone already, or the pair "
                       "is not merged."}


@router.get("/duplicates", response_class=HTMLResponse)
async def duplicates(request: Request, session: StaffSession, deps: DepsDep) -> Response:
    params: dict[str, Any] = {"limit": 20}
    if request.query_params.get("cursor"):
        params["cursor"] = request.query_params["cursor"][:500]
    found = await service.api(deps, session, "identity", "GET", "/v1/duplicates",
                              params=params)
    done = NOTICES.get(request.query_params.get("done", ""))
    undo = request.query_params.get("undo")
    problem = PROBLEMS.get(request.query_params.get("problem", ""))
    return page(request, "duplicates.html", session, deps, "/console/duplicates",
                pairs=found["items"], next_cursor=found.get("next_cursor"), notice=done,
                problem=problem,
                undo=int(undo) if undo and undo.isdigit() else None)


@router.post("/duplicates/{pair_id}/{action}", response_model=None)
async def decide(pair_id: int, action: str, request: Request, session: StaffSession,
                 deps: DepsDep) -> Response:
    posted = await form_data(request)
    if action not in ("merge", "unmerge", "dismiss") or not check_csrf(request, session,
                                                                          posted):
        return redirect("/console/duplicates")
    body = None
    if action == "merge":
        body = {"survivor_id": str(posted.get("survivor_id") or "")}
    try:
        await service.api(deps, session, "identity", "POST",
                          f"/v1/duplicates/{pair_id}/{action}", json=body)
    except service.ApiError as exc:
        if exc.status not in (404, 409, 422):
            raise
        # decided already (another tab, another staff member), or undone already
        return redirect(f"/console/duplicates?problem={action}")
    done = {"merge": "merged", "unmerge": "unmerged", "dismiss": "dismissed"}[action]
    undo = f"&undo={pair_id}" if action == "merge" else ""
    return redirect(f"/console/duplicates?done={done}{undo}")


async def _programs_page(request: Request, session: Any, deps: Any, code: str | None,
                         errors: list[FieldProblem] | None = None, status: int = 200,
                         staff_id: str = "") -> Response:
    programs = (await service.api(deps, session, "enrollment", "GET", "/v1/programs",
                                  params={"limit": 100}))["items"]
    code = code or (programs[0]["code"] if programs else None)
    staff: list[dict[str, Any]] = []
    if code:
        staff = (await service.api(deps, session, "enrollment", "GET",
                                   f"/v1/programs/{code}/staff", params={"limit": 100}))["items"]
    return page(request, "programs.html", session, deps, "/console/programs",
                programs=programs, code=code, staff=staff, errors=errors, status=status,
                staff_id=staff_id, notice=NOTICES.get(request.query_params.get("done", "")))


@router.get("/programs", response_class=HTMLResponse)
async def programs(request: Request, session: StaffSession, deps: DepsDep) -> Response:
    if not session.is_admin:
        return redirect("/console")
    return await _programs_page(request, session, deps, request.query_params.get("program"))


@router.post("/programs/{code}/staff", response_model=None)
async def authorize(code: str, request: Request, session: StaffSession, deps: DepsDep
                    ) -> Response:
    if not session.is_admin:
        return redirect("/console")
    posted = await form_data(request)
    staff_id = str(posted.get("staff_id") or "").strip()
    revoke = posted.get("revoke") == "1"
    if not check_csrf(request, session, posted):
        return redirect(f"/console/programs?program={code}")
    try:
        uuid.UUID(staff_id)
    except ValueError:
        return await _programs_page(
            request, session, deps, code, [FieldProblem(
                "staff_id", "Staff account ID",
                "Staff account ID must be an account ID, like "
                "3f2b8c1e-5a4d-4e7b-9c1a-2b3c4d5e6f70.")], 422, staff_id)
    try:
        await service.api(deps, session, "enrollment", "DELETE" if revoke else "PUT",
                          f"/v1/programs/{code}/staff/{staff_id}")
    except service.ApiError as exc:
        if exc.status not in (404, 409, 422):
            raise
        problems = field_problems(exc.problem, {"staff_id": ("staff_id", "Staff account ID")})
        return await _programs_page(
            request, session, deps, code,
            problems or [FieldProblem("staff_id", "Staff account ID", exc.detail)],
            exc.status, staff_id)
    return redirect(f"/console/programs?program={code}&done="
                    f"{'revoked' if revoke else 'authorized'}")
