"""The staff console: home, the Returning Citizens list, Add Customer's three pages
(form, match step, write-down) and a customer's page with password help."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway import service
from gateway.api.web import (
    DepsDep,
    StaffSession,
    check_csrf,
    form_data,
    page,
    redirect,
)
from gateway.deps import Deps
from gateway.domain import (
    ADD_CUSTOMER_FIELDS,
    FieldProblem,
    PageSession,
    add_customer_body,
    field_problems,
    form_echo,
)
from gateway.service import groups as group_service

router = APIRouter(prefix="/console", include_in_schema=False)
STATUSES = [{"code": "enrolled", "name": "Enrolled"}, {"code": "exited", "name": "Exited"}]
EXPIRED = FieldProblem("form", "Form", "The form expired. Please try again.")
PAGE_SIZE = 25


async def reference(deps: Deps, session: PageSession, kind: str) -> list[dict[str, Any]]:
    return await service.reference(deps, session, kind)


@router.get("", response_class=HTMLResponse)
async def home(request: Request, session: StaffSession, deps: DepsDep) -> Response:
    notice = "Your password is changed." if request.query_params.get("changed") else None
    try:
        groups = await group_service.my_groups(deps, session)
    except service.Unavailable:
        groups = None  # the page says the groups cannot be shown now
    return page(request, "console_home.html", session, deps, "/console", notice=notice,
                groups=groups)


@router.get("/returning-citizens", response_class=HTMLResponse)
async def customer_list(request: Request, session: StaffSession, deps: DepsDep) -> Response:
    q = request.query_params
    filters = {k: (q.get(k) or "")[:100] for k in ("q", "institution", "status")}
    params: dict[str, Any] = {k: v for k, v in filters.items() if v}
    params["limit"] = PAGE_SIZE
    cursor = q.get("cursor")
    if cursor:
        params["cursor"] = cursor[:500]
    institutions = await reference(deps, session, "institutions")
    try:
        found = await service.api(deps, session, "enrollment", "GET",
                                  "/v1/returning-citizens", params=params)
    except service.ApiError as exc:
        if exc.status == 403:
            return page(request, "error.html", session, deps, "/console/returning-citizens",
                         heading="Not authorized for Returning Citizens",
                         message="Ask an administrator to authorize you for the "
                                 "Returning Citizens program.")
        raise
    base = {k: v for k, v in filters.items() if v}
    next_url = ("/console/returning-citizens?" + urlencode({**base, "cursor": found["next_cursor"]})
                if found.get("next_cursor") else None)
    first_url = ("/console/returning-citizens?" + urlencode(base)) if cursor else None
    return page(request, "rc_list.html", session, deps, "/console/returning-citizens",
                 items=found["items"], filters=filters, institutions=institutions,
                 statuses=STATUSES, names={i["code"]: i["name"] for i in institutions},
                 next_url=next_url, first_url=first_url)


async def _formpage(request: Request, session: PageSession, deps: Deps,
                     form: dict[str, Any], errors: list[FieldProblem] | None = None,
                     status: int = 200) -> Response:
    institutions, counties, offenses = await asyncio.gather(
        *(reference(deps, session, k) for k in ("institutions", "counties", "offenses")))
    return page(request, "add_customer.html", session, deps, "/console/returning-citizens",
                 form=form, institutions=institutions, counties=counties, offenses=offenses,
                 errors=errors, status=status,
                 offender_search_url="https://www2.illinois.gov/idoc/Offender/Pages/"
                                     "InmateSearch.aspx")


@router.get("/returning-citizens/new", response_class=HTMLResponse)
async def add_customer_form(request: Request, session: StaffSession, deps: DepsDep
                            ) -> Response:
    return await _formpage(request, session, deps, {})


@router.post("/returning-citizens/new", response_model=None)
async def add_customer_match(request: Request, session: StaffSession, deps: DepsDep
                             ) -> Response:
    """Step 1: the whole form is checked and existing accounts are looked up. The form
    (SSN included) waits sealed in the gateway's database for step 2, never in the page."""
    posted = await form_data(request)
    body = add_customer_body(posted)
    if not check_csrf(request, session, posted):
        return await _formpage(request, session, deps, form_echo(body), [EXPIRED], 403)
    try:
        found = await service.api(deps, session, "enrollment", "POST",
                                  "/v1/returning-citizens/matches", json=body)
    except service.ApiError as exc:
        if exc.status != 422:
            raise
        return await _formpage(request, session, deps, form_echo(body),
                                field_problems(exc.problem, ADD_CUSTOMER_FIELDS), 422)
    intake_id = await service.keep_intake(request.app.state.runtime.pool, deps, session, body)
    return page(request, "match.html", session, deps, "/console/returning-citizens",
                 intake_id=intake_id, person=form_echo(body), candidates=found["candidates"],
                 open_enrollment_id=found.get("open_enrollment_id"))


@router.post("/returning-citizens/new/{intake_id}", response_model=None)
async def add_customer_submit(intake_id: uuid.UUID, request: Request, session: StaffSession,
                              deps: DepsDep) -> Response:
    """Step 2: link the chosen account, or make one after rejecting every candidate."""
    pool = request.app.state.runtime.pool
    posted = await form_data(request)
    body = await service.intake(pool, deps, session, intake_id)
    if body is None:
        return redirect("/console/returning-citizens/new")
    if not check_csrf(request, session, posted):
        return await _formpage(request, session, deps, form_echo(body), [EXPIRED], 403)
    link = str(posted.get("link_account_id") or "")
    submit = dict(body)
    if link:
        submit["link_account_id"] = link
    else:  # every account the page showed is not this person (one shown since: 409)
        shown = posted.get("shown_account_id") or []
        submit["rejected_account_ids"] = [shown] if isinstance(shown, str) else list(shown)
    try:
        # the intake's id (made when the match page was drawn) keys this submission:
        # a resubmit of the page, or a retry after a lost answer, finishes the first
        done = await service.api(deps, session, "enrollment", "POST", "/v1/returning-citizens",
                                 json=submit,
                                 headers={"Idempotency-Key": f"console-intake-{intake_id}"})
    except service.ApiError as exc:
        if exc.status not in (409, 422):
            raise
        return await _formpage(request, session, deps, form_echo(body),
                                field_problems(exc.problem, ADD_CUSTOMER_FIELDS)
                                or [FieldProblem("idoc_number", "IDOC Number", exc.detail)],
                                exc.status)
    await service.drop_intake(pool, intake_id)
    return page(request, "writedown.html", session, deps, "/console/returning-citizens",
                 done=done, person=f"{body.get('first_name')} {body.get('last_name')}")


@router.get("/customers/{enrollment_id}", response_class=HTMLResponse)
async def customer_page(enrollment_id: uuid.UUID, request: Request, session: StaffSession,
                        deps: DepsDep) -> Response:
    record = await service.api(deps, session, "enrollment", "GET",
                               f"/v1/returning-citizens/{enrollment_id}")
    # the account and the groups' parts side by side: each needs only the customer id
    account, extras = await asyncio.gather(
        service.api(deps, session, "identity", "GET", f"/v1/customers/{record['customer_id']}"),
        group_service.customer_extras(deps, session, record["customer_id"]))
    return page(request, "customer.html", session, deps, "/console/returning-citizens",
                 record=record, account=account, **extras)


@router.post("/customers/{enrollment_id}/password-reset", response_model=None)
async def password_reset(enrollment_id: uuid.UUID, request: Request, session: StaffSession,
                         deps: DepsDep) -> Response:
    posted = await form_data(request)
    if not check_csrf(request, session, posted):
        return redirect(f"/console/customers/{enrollment_id}")
    record = await service.api(deps, session, "enrollment", "GET",
                               f"/v1/returning-citizens/{enrollment_id}")
    reset = await service.api(deps, session, "identity", "POST",
                              f"/v1/customers/{record['customer_id']}/password-reset")
    done = {"account_created": True, "username": record["username"],
            "temporary_password": reset["temporary_password"],
            "password_expires_at": reset.get("password_expires_at"),
            "enrollment_id": str(enrollment_id)}
    return page(request, "writedown.html", session, deps, "/console/returning-citizens",
                 done=done, person=f"{record['first_name']} {record['last_name']}", reset=True)
