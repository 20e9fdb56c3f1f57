"""IWDS run reports (administrators, as sync-iwds' runs API allows): the runs with their
counts, one run with its rejected rows, and held runs to confirm or discard."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from gateway import service
from gateway.api.web import NO_STORE, DepsDep, StaffSession, check_csrf, form_data, page, redirect
from gateway.service import iwds

router = APIRouter(prefix="/console/iwds", include_in_schema=False)
HOME = "/console/iwds"
FEEDS = {"participants": "Participants", "staff-access": "Staff access"}
STATUSES = {"running": "Running", "done": "Done", "held": "Held: waiting for a decision",
            "refused": "Refused", "discarded": "Discarded"}
NOTICES = {"confirmed": "The run is confirmed and applied.",
           "discarded": "The run is discarded: nothing of it was applied."}


def _admin_only(session: StaffSession) -> Response | None:
    return None if session.is_admin else redirect("/console")


@router.get("", response_class=HTMLResponse)
async def runs(request: Request, session: StaffSession, deps: DepsDep) -> Response:
    if (away := _admin_only(session)) is not None:
        return away
    cursor = (request.query_params.get("cursor") or "")[:512] or None
    found = await iwds.runs(deps, session, cursor)
    held = await iwds.held_runs(deps, session) if cursor is None else []
    return page(request, "iwds_runs.html", session, deps, HOME, runs=found["items"],
                held=held, next_cursor=found.get("next_cursor"), paged=cursor is not None,
                feeds=FEEDS, statuses=STATUSES,
                notice=NOTICES.get(request.query_params.get("done", "")))


def _run_id(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _no_run(request: Request, session: StaffSession, deps: DepsDep) -> Response:
    return page(request, "error.html", session, deps, HOME, status=404,
                heading="No such run", message="There is no IWDS run with this address. "
                "Go back to IWDS runs and choose one from the list.")


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def one_run(run_id: str, request: Request, session: StaffSession, deps: DepsDep
                  ) -> Response:
    if (away := _admin_only(session)) is not None:
        return away
    rid = _run_id(run_id)
    try:
        if rid is None:
            raise service.ApiError(404, {"title": "Not found"})
        found = await iwds.run(deps, session, rid)
        rejected = (await iwds.rejected(deps, session, rid) if found["counts"]["rejected"]
                    else iwds.Rejected([], False))
    except service.ApiError as exc:
        if exc.status != 404:
            raise
        return _no_run(request, session, deps)
    return page(request, "iwds_run.html", session, deps, HOME, run=found, rejected=rejected,
                feeds=FEEDS, statuses=STATUSES, shown=iwds.REJECTED_SHOWN,
                problem=request.query_params.get("problem") == "not-held",
                notice=NOTICES.get(request.query_params.get("done", "")))


@router.get("/runs/{run_id}/rejected.csv", response_model=None)
async def rejected_csv(run_id: str, request: Request, session: StaffSession, deps: DepsDep
                       ) -> Response:
    """The whole list of rejected rows, streamed from sync-iwds as it sends it."""
    if (away := _admin_only(session)) is not None:
        return away
    rid = _run_id(run_id)
    if rid is None:
        return _no_run(request, session, deps)
    answer = await iwds.rejected_csv(deps, session, rid)
    if answer.status_code != 200:
        await answer.aclose()
        return _no_run(request, session, deps)
    headers = {**NO_STORE,
               "Content-Disposition": f'attachment; filename="iwds-run-{rid}-rejected.csv"'}
    return StreamingResponse(answer.aiter_raw(), media_type="text/csv", headers=headers,
                             background=BackgroundTask(answer.aclose))


@router.post("/runs/{run_id}/{action}", response_model=None)
async def decide(run_id: str, action: str, request: Request, session: StaffSession,
                 deps: DepsDep) -> Response:
    if (away := _admin_only(session)) is not None:
        return away
    rid = _run_id(run_id)
    posted = await form_data(request)
    if rid is None or action not in ("confirm", "discard"):
        return _no_run(request, session, deps)
    if not check_csrf(request, session, posted):
        return redirect(f"{HOME}/runs/{rid}")
    try:
        await iwds.decide(deps, session, rid, action == "confirm")
    except service.ApiError as exc:
        if exc.status == 404:
            return _no_run(request, session, deps)
        if exc.status == 409:  # decided already (by someone else, or in another tab)
            return redirect(f"{HOME}/runs/{rid}?problem=not-held")
        raise
    done = "confirmed" if action == "confirm" else "discarded"
    return redirect(f"{HOME}/runs/{rid}?done={done}")
