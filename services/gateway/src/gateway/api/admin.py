"""The console's queues and settings: possible duplicate accounts (merge, unmerge,
dismiss) and, for administrators, who is authorized for each program and handing a
departing staff member's groups to someone else."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway import service
from gateway.api.web import DepsDep, StaffSession, check_csrf, form_data, page, redirect
from gateway.domain import FieldProblem, field_problems
from gateway.service import group_people as people

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


# -- hand-over: a departing staff member's groups to another (administrators) ---------------

HAND_OVER_FIELDS = (("from_username", "Departing staff member's username",
                     "Enter the username of the staff member who is leaving"),
                    ("to_username", "New owner's username",
                     "Enter the username of the staff member who takes the groups over"))


def _hand_over_page(request: Request, session: Any, deps: Any, *, form: dict[str, str],
                    errors: list[FieldProblem] | None = None, status: int = 200,
                    notice: str | None = None) -> Response:
    return page(request, "hand_over.html", session, deps, "/console/hand-overs", form=form,
                errors=errors, status=status, outcome=notice)


@router.get("/hand-overs", response_class=HTMLResponse)
async def hand_over_form(request: Request, session: StaffSession, deps: DepsDep) -> Response:
    if not session.is_admin:
        return redirect("/console")
    q = request.query_params
    moved = q.get("moved", "")
    notice = (people.hand_over_notice(int(moved), q.get("from", "")[:200], q.get("to", "")[:200])
              if moved.isdigit() else None)
    return _hand_over_page(request, session, deps, form={}, notice=notice)


@router.post("/hand-overs", response_model=None)
async def hand_over(request: Request, session: StaffSession, deps: DepsDep) -> Response:
    """Every personal group the departing staff member owns goes to the other (groups
    refuses a non-administrator, the same person twice, or an inactive new owner)."""
    if not session.is_admin:
        return redirect("/console")
    posted = await form_data(request)
    form = {key: str(posted.get(key) or "")[:500] for key, _, _ in HAND_OVER_FIELDS}
    if not check_csrf(request, session, posted):
        return _hand_over_page(request, session, deps, form=form, status=403, errors=[
            FieldProblem("from_username", "Form", "The form expired. Please try again.")])
    names: dict[str, str] = {}
    problems: list[FieldProblem] = []
    for key, label, missing in HAND_OVER_FIELDS:
        given = people.staff_username(form[key], key, label, missing)
        if isinstance(given, FieldProblem):
            problems.append(given)
        else:
            names[key] = given
    found: dict[str, dict[str, Any]] = {}
    for key, label, _ in HAND_OVER_FIELDS:
        if key in names:
            staff = await people.find_staff(deps, session, names[key])
            if staff is None:
                problems.append(FieldProblem(
                    key, label, f"No staff member has the username {names[key]}."))
            else:
                found[key] = staff
    giver, taker = found.get("from_username"), found.get("to_username")
    if giver and taker and giver["id"] == taker["id"]:
        problems.append(FieldProblem("to_username", "New owner's username",
                                     "Choose someone other than the staff member who is "
                                     "leaving."))
    elif taker and taker.get("status") != "active":
        problems.append(FieldProblem("to_username", "New owner's username",
                                     f"{people.staff_label(taker)} no longer has an active "
                                     "account: choose someone who does."))
    if problems or giver is None or taker is None:
        return _hand_over_page(request, session, deps, form=form, errors=problems, status=422)
    try:
        moved = await people.hand_over(deps, session, str(giver["id"]), str(taker["id"]))
    except service.ApiError as exc:
        if exc.status not in (403, 409, 422):
            raise
        return _hand_over_page(request, session, deps, form=form, status=exc.status, errors=[
            FieldProblem("to_username", "New owner's username",
                         people.sentence("The groups were not handed over: "
                                         + people.refusal(exc)))])
    query = urlencode({"moved": len(moved), "from": people.staff_label(giver),
                       "to": people.staff_label(taker)})
    return redirect(f"/console/hand-overs?{query}")
