"""The staff console's group pages: a group (members, subgroups, the web address and
passcode), its invitations, its messages with their delivery status, the Assessment
Dashboard, and a customer reached through a group ("why can I see this customer?")."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway import service
from gateway.api.web import NO_STORE, DepsDep, StaffSession, check_csrf, form_data, page, redirect
from gateway.deps import Deps
from gateway.domain import FieldProblem, PageSession
from gateway.service import group_people as people
from gateway.service import groups as gs

router = APIRouter(prefix="/console", include_in_schema=False)
EXPIRED = FieldProblem("form", "Form", "The form expired. Please try again.")
PAGE = 25


def _q(request: Request, name: str, limit: int = 100) -> str:
    return (request.query_params.get(name) or "").strip()[:limit]


def not_found(request: Request, session: PageSession, deps: Deps,
              what: str = "group") -> HTMLResponse:
    """The same page whether the group does not exist or the staff member does not
    reach it (groups answers 404 for both)."""
    return page(request, "error.html", session, deps, "/console", status=404,
                heading=f"We cannot find that {what}",
                message=f"The {what} does not exist, or you do not have access to it. "
                        "Check the address, or go back to My groups.")


async def _group(session: PageSession, deps: Deps, group_id: uuid.UUID
                 ) -> dict[str, Any] | None:
    try:
        return await gs.group(deps, session, group_id)
    except service.ApiError as exc:
        if exc.status == 404:
            return None
        raise


def owns(g: dict[str, Any]) -> bool:
    return str(g.get("reason") or "").startswith(("owner", "co-owner"))


def group_nav(g: dict[str, Any]) -> list[tuple[str, str]]:
    base = f"/console/groups/{g['id']}"
    nav = [(base, "Members and subgroups")]
    if g.get("join_code"):
        nav.append((f"{base}/invitations", "Invitations"))
    nav += [(f"{base}/messages", "Messages"), (f"{base}/dashboard", "Assessment Dashboard")]
    return nav


def group_page(request: Request, template: str, session: PageSession, deps: Deps,
               g: dict[str, Any], here: str, **context: Any) -> HTMLResponse:
    return page(request, template, session, deps, "/console", g=g, owner=owns(g),
                side_sub=group_nav(g), side_sub_label=g["name"], here=here,
                kind_name=gs.KIND_NAMES.get(g["kind"], g["kind"]), **context)


def _join_url(request: Request, g: dict[str, Any]) -> str | None:
    """The address customers open to join (the gateway's join page), for a group with one."""
    code = g.get("join_code")
    return str(request.base_url).rstrip("/") + f"/join/{code}" if code else None


def _paged(path: str, filters: dict[str, str], next_cursor: str | None, cursor: str | None
           ) -> dict[str, str | None]:
    kept = {k: v for k, v in filters.items() if v}
    return {
        "next_url": f"{path}?" + urlencode({**kept, "cursor": next_cursor})
        if next_cursor else None,
        "first_url": (f"{path}?" + urlencode(kept) if kept else path) if cursor else None,
    }


# -- My groups: create a personal group ---------------------------------------------------

@router.post("/groups", response_model=None)
async def create_group(request: Request, session: StaffSession, deps: DepsDep) -> Response:
    posted = await form_data(request)
    name = str(posted.get("name") or "")
    problems = [EXPIRED] if not check_csrf(request, session, posted) else gs.name_problems(name)
    if not problems:
        try:
            created = await gs.create_group(deps, session, name)
        except service.ApiError as exc:
            if exc.status != 422:
                raise
            problems = [FieldProblem("name", "Group name", f"Group name: {exc.detail}")]
        else:
            return redirect(f"/console/groups/{created['id']}?created=1")
    groups = await gs.my_groups(deps, session)
    return page(request, "console_home.html", session, deps, "/console", groups=groups,
                errors=problems, new_name=name, status=403 if EXPIRED in problems else 422)


# -- a group ------------------------------------------------------------------------------

HOME_NOTICES = {
    "created": "The group is made. Share its web address and passcode, or invite people.",
    "rotated": "A new passcode is made: the old one no longer works.",
    "off": "Joining with the passcode is switched off.",
    "sub": "The subgroup is made.",
    "member_added": "The customer is now a member of the group.",
    "member_there": "That customer is already a member of the group.",
    "member_removed": "The member is removed from the group.",
    "owner_added": "The staff member is now a co-owner of the group.",
    "owner_there": "That staff member is already an owner of the group.",
    "owner_removed": "The co-owner is removed: they no longer manage the group.",
}


async def _home_page(request: Request, session: PageSession, deps: Deps, g: dict[str, Any],
                     *, errors: list[FieldProblem] | None = None,
                     form: dict[str, str] | None = None, status: int = 200) -> Response:
    """The group's page: members (searched and paged as the address says), subgroups,
    owners; with a form's errors when one was refused."""
    group_id = g["id"]
    filters = {"q": _q(request, "q"), "source": _q(request, "source", 20)}
    cursor = _q(request, "cursor", 500) or None
    if errors:  # a refused form: the first page, unfiltered
        filters, cursor = {"q": "", "source": ""}, None
    found, subs, parent = await asyncio.gather(
        gs.members(deps, session, group_id, q=filters["q"], source=filters["source"],
                   cursor=cursor, limit=PAGE),
        gs.subgroups(deps, session, g), gs.parent(deps, session, g))
    notice = None if errors else HOME_NOTICES.get(
        next((k for k in HOME_NOTICES if request.query_params.get(k)), ""))
    base = f"/console/groups/{group_id}"
    return group_page(request, "group.html", session, deps, g, base,
                      members=found["items"], filters=filters, sources=gs.SOURCES,
                      source_options=gs.options(gs.SOURCES), subgroups=subs, parent=parent,
                      join_url=_join_url(request, g), notice=notice,
                      owners=people.owner_rows(list(g.get("owners") or [])),
                      editable=owns(g) and g["kind"] == "personal",
                      errors=errors, form=form or {}, new_name=(form or {}).get("name", ""),
                      status=status,
                      **_paged(base, filters, found.get("next_cursor"), cursor))


@router.get("/groups/{group_id}", response_class=HTMLResponse)
async def group_home(group_id: uuid.UUID, request: Request, session: StaffSession,
                     deps: DepsDep) -> Response:
    g = await _group(session, deps, group_id)
    if g is None:
        return not_found(request, session, deps)
    return await _home_page(request, session, deps, g)


@router.post("/groups/{group_id}/subgroups", response_model=None)
async def create_subgroup(group_id: uuid.UUID, request: Request, session: StaffSession,
                          deps: DepsDep) -> Response:
    posted = await form_data(request)
    if not check_csrf(request, session, posted):
        return redirect(f"/console/groups/{group_id}")
    name = str(posted.get("name") or "")
    problems = gs.name_problems(name)
    if not problems:
        try:
            created = await gs.create_group(deps, session, name, parent_id=group_id)
        except service.ApiError as exc:
            if exc.status == 404:
                return not_found(request, session, deps)
            if exc.status not in (403, 409, 422):
                raise
            problems = [FieldProblem("name", "Subgroup name", exc.detail)]
        else:
            return redirect(f"/console/groups/{created['id']}?sub=1")
    g = await _group(session, deps, group_id)
    if g is None:
        return not_found(request, session, deps)
    return await _home_page(request, session, deps, g,
                            errors=[FieldProblem("name", p.label, p.message) for p in problems],
                            form={"name": name}, status=422)


# -- members by hand and co-owners (the group's owners) --------------------------------------

async def _refused(request: Request, session: PageSession, deps: Deps, group_id: uuid.UUID,
                   problem: FieldProblem, form: dict[str, str], status: int) -> Response:
    """The group page again with the form's error (404 page when the group is gone)."""
    g = await _group(session, deps, group_id)
    if g is None:
        return not_found(request, session, deps)
    return await _home_page(request, session, deps, g, errors=[problem], form=form,
                            status=status)


def _refusal(exc: service.ApiError, field: str, label: str, who: str = "") -> FieldProblem:
    """groups' refusal of an owner's change, in the form's words."""
    if exc.status == 403:
        return FieldProblem(field, label, "Only the group's owners can change its members "
                                          "and co-owners.")
    return FieldProblem(field, label, people.sentence(
        f"{who} {people.refusal(exc)}" if who else people.refusal(exc)))


@router.post("/groups/{group_id}/members", response_model=None)
async def add_member(group_id: uuid.UUID, request: Request, session: StaffSession,
                     deps: DepsDep) -> Response:
    """An owner adds a customer they reach, named by username or email address."""
    posted = await form_data(request)
    text = str(posted.get("member") or "")[:500]
    form = {"member": text}
    if not check_csrf(request, session, posted):
        return await _refused(request, session, deps, group_id,
                              replace(EXPIRED, field="member"), form, 403)
    login = people.customer_login(text)
    if isinstance(login, FieldProblem):
        return await _refused(request, session, deps, group_id, login, form, 422)
    label = "Username or email address"
    found = await people.find_customers(deps, session, login)
    if not found:
        return await _refused(request, session, deps, group_id, FieldProblem(
            "member", label, f"No customer you can see has the {login.by.replace('_', ' ')} "
                             f"{login.value}. Check it, or invite the customer instead."),
            form, 422)
    if len(found) > 1:
        return await _refused(request, session, deps, group_id, FieldProblem(
            "member", label, "More than one customer has that email address: enter the "
                             "customer's username instead."), form, 422)
    who = people.person_name(found[0].get("first_name"), found[0].get("last_name"),
                             found[0].get("username"))
    try:
        added = await people.add_member(deps, session, group_id, str(found[0]["id"]))
    except service.ApiError as exc:
        if exc.status == 404:
            return not_found(request, session, deps)
        if exc.status not in (403, 409, 422):
            raise
        return await _refused(request, session, deps, group_id,
                              _refusal(exc, "member", label, who), form, exc.status)
    return redirect(f"/console/groups/{group_id}?{'member_added' if added else 'member_there'}=1")


@router.post("/groups/{group_id}/members/remove", response_model=None)
async def remove_member(group_id: uuid.UUID, request: Request, session: StaffSession,
                        deps: DepsDep) -> Response:
    posted = await form_data(request)
    if not check_csrf(request, session, posted):
        return redirect(f"/console/groups/{group_id}")
    problem = FieldProblem("members-heading", "Members",
                           "Choose a member to remove from the list of members.")
    try:
        customer_id = uuid.UUID(str(posted.get("customer_id") or ""))
    except ValueError:
        return await _refused(request, session, deps, group_id, problem, {}, 422)
    try:
        await people.remove_member(deps, session, group_id, customer_id)
    except service.ApiError as exc:
        if exc.status == 404 and await _group(session, deps, group_id) is not None:
            return await _refused(request, session, deps, group_id, FieldProblem(
                "members-heading", "Members",
                "That customer is not a member of this group any more."), {}, 404)
        if exc.status == 404:
            return not_found(request, session, deps)
        if exc.status not in (403, 409, 422):
            raise
        return await _refused(request, session, deps, group_id,
                              _refusal(exc, "members-heading", "Members"), {}, exc.status)
    return redirect(f"/console/groups/{group_id}?member_removed=1")


@router.post("/groups/{group_id}/owners", response_model=None)
async def add_co_owner(group_id: uuid.UUID, request: Request, session: StaffSession,
                       deps: DepsDep) -> Response:
    """An owner makes another staff member, named by username, a co-owner."""
    posted = await form_data(request)
    text = str(posted.get("co_owner") or "")[:500]
    form = {"co_owner": text}
    label = "Staff username"
    if not check_csrf(request, session, posted):
        return await _refused(request, session, deps, group_id,
                              replace(EXPIRED, field="co_owner"), form, 403)
    username = people.staff_username(text, "co_owner", label,
                                     "Enter the username of the staff member to add")
    if isinstance(username, FieldProblem):
        return await _refused(request, session, deps, group_id, username, form, 422)
    staff = await people.find_staff(deps, session, username)
    if staff is None:
        return await _refused(request, session, deps, group_id, FieldProblem(
            "co_owner", label, f"No staff member has the username {username}."), form, 422)
    who = people.staff_label(staff)
    if staff.get("status") != "active":
        return await _refused(request, session, deps, group_id, FieldProblem(
            "co_owner", label, f"{who} no longer has an active account."), form, 422)
    try:
        added = await people.add_co_owner(deps, session, group_id, str(staff["id"]))
    except service.ApiError as exc:
        if exc.status == 404 and await _group(session, deps, group_id) is None:
            return not_found(request, session, deps)
        if exc.status not in (403, 404, 409, 422):
            raise
        return await _refused(request, session, deps, group_id,
                              _refusal(exc, "co_owner", label, who), form, exc.status)
    return redirect(f"/console/groups/{group_id}?{'owner_added' if added else 'owner_there'}=1")


@router.post("/groups/{group_id}/owners/{staff_id}/remove", response_model=None)
async def remove_co_owner(group_id: uuid.UUID, staff_id: uuid.UUID, request: Request,
                          session: StaffSession, deps: DepsDep) -> Response:
    posted = await form_data(request)
    if not check_csrf(request, session, posted):
        return redirect(f"/console/groups/{group_id}")
    try:
        await people.remove_co_owner(deps, session, group_id, staff_id)
    except service.ApiError as exc:
        g = await _group(session, deps, group_id)
        if g is None:
            return not_found(request, session, deps)
        if exc.status not in (403, 404, 409, 422):
            raise
        problem = (FieldProblem("owners-heading", "Owners",
                                "That staff member is not a co-owner of this group.")
                   if exc.status == 404 else
                   FieldProblem("owners-heading", "Owners",
                                "The group's owner cannot be removed: an administrator can "
                                "hand the group to someone else.")
                   if exc.status == 409 else _refusal(exc, "owners-heading", "Owners"))
        return await _home_page(request, session, deps, g, errors=[problem],
                                status=exc.status)
    return redirect(f"/console/groups/{group_id}?owner_removed=1")


@router.post("/groups/{group_id}/passcode", response_model=None)
async def rotate_passcode(group_id: uuid.UUID, request: Request, session: StaffSession,
                          deps: DepsDep) -> Response:
    posted = await form_data(request)
    if not check_csrf(request, session, posted):
        return redirect(f"/console/groups/{group_id}")
    switch_off = posted.get("action") == "off"
    try:
        if switch_off:
            await gs.switch_off_passcode(deps, session, group_id)
        else:
            await gs.rotate_passcode(deps, session, group_id)
    except service.ApiError as exc:
        if exc.status in (403, 404):
            return not_found(request, session, deps)
        raise
    return redirect(f"/console/groups/{group_id}?{'off' if switch_off else 'rotated'}=1")


# -- invitations --------------------------------------------------------------------------

async def _invitations_page(request: Request, session: PageSession, deps: Deps,
                            g: dict[str, Any], *, errors: list[FieldProblem] | None = None,
                            form: dict[str, str] | None = None, notice: str | None = None,
                            status: int = 200) -> Response:
    gid = g["id"]
    filters = {"status": _q(request, "status", 20)}
    cursor = _q(request, "cursor", 500) or None
    found = await gs.invitations(deps, session, gid, status=filters["status"], cursor=cursor)
    names = (await gs.member_names(deps, session, gid)
             if any(i.get("customer_id") for i in found["items"]) else {})
    return group_page(request, "group_invitations.html", session, deps, g,
                      f"/console/groups/{gid}/invitations", invitations=found["items"], names=names,
                      filters=filters, statuses=gs.INVITATION_STATUSES,
                      status_options=gs.options(gs.INVITATION_STATUSES),
                      form=form or {}, errors=errors, notice=notice, status=status,
                      **_paged(f"/console/groups/{gid}/invitations", filters,
                               found.get("next_cursor"), cursor))


@router.get("/groups/{group_id}/invitations", response_class=HTMLResponse)
async def invitation_board(group_id: uuid.UUID, request: Request, session: StaffSession,
                           deps: DepsDep) -> Response:
    g = await _group(session, deps, group_id)
    if g is None or not g.get("join_code"):
        return not_found(request, session, deps)
    sent = request.query_params.get("sent")
    notice = (f"{sent} invitation{'s' if sent != '1' else ''} sent." if sent and sent.isdigit()
              else {"resend": "The invitation is sent again.",
                    "revoke": "The invitation is withdrawn."}.get(_q(request, "done", 10)))
    return await _invitations_page(request, session, deps, g, notice=notice)


@router.post("/groups/{group_id}/invitations", response_model=None)
async def invite(group_id: uuid.UUID, request: Request, session: StaffSession, deps: DepsDep
                 ) -> Response:
    posted = await form_data(request)
    form = {"emails": str(posted.get("emails") or "")[:5000],
            "customer_ids": str(posted.get("customer_ids") or "")[:5000]}
    g = await _group(session, deps, group_id)
    if g is None or not g.get("join_code"):
        return not_found(request, session, deps)
    if not check_csrf(request, session, posted):
        return await _invitations_page(request, session, deps, g, errors=[EXPIRED],
                                       form=form, status=403)
    emails, customers, problems = gs.invite_form(form["emails"], form["customer_ids"])
    if not problems:
        try:
            items = await gs.invite(deps, session, group_id, emails, customers)
        except service.ApiError as exc:
            if exc.status not in (403, 404, 409, 422):
                raise
            problems = [FieldProblem("emails", "Email addresses",
                                     "The invitations were not sent: " + exc.detail)]
        else:
            sent = sum(1 for i in items if i.get("status") == "pending")
            return redirect(f"/console/groups/{group_id}/invitations?sent={sent}")
    return await _invitations_page(request, session, deps, g, errors=problems, form=form,
                                   status=422)


@router.post("/groups/{group_id}/invitations/{invitation_id}/{action}", response_model=None)
async def invitation_action(group_id: uuid.UUID, invitation_id: uuid.UUID, action: str,
                            request: Request, session: StaffSession, deps: DepsDep
                            ) -> Response:
    posted = await form_data(request)
    if action not in ("resend", "revoke") or not check_csrf(request, session, posted):
        return redirect(f"/console/groups/{group_id}/invitations")
    try:
        await gs.invitation_action(deps, session, invitation_id, action)
    except service.ApiError as exc:
        if exc.status == 404:
            return not_found(request, session, deps, "invitation")
        if exc.status != 409:
            raise
        g = await _group(session, deps, group_id)
        if g is None:
            return not_found(request, session, deps)
        return await _invitations_page(
            request, session, deps, g, status=409,
            errors=[FieldProblem("invitation-board", "Invitation", exc.detail)])
    return redirect(f"/console/groups/{group_id}/invitations?done={action}")


# -- messages -----------------------------------------------------------------------------

async def _messages_page(request: Request, session: PageSession, deps: Deps,
                         g: dict[str, Any], *, errors: list[FieldProblem] | None = None,
                         form: dict[str, Any] | None = None, status: int = 200) -> Response:
    pool = request.app.state.runtime.pool
    sent = await gs.sent_messages(pool, session, g["id"])
    return group_page(request, "group_messages.html", session, deps, g,
                      f"/console/groups/{g['id']}/messages", sent=sent, form=form or {},
                      errors=errors, status=status)


@router.get("/groups/{group_id}/messages", response_class=HTMLResponse)
async def messages(group_id: uuid.UUID, request: Request, session: StaffSession,
                   deps: DepsDep) -> Response:
    g = await _group(session, deps, group_id)
    if g is None:
        return not_found(request, session, deps)
    return await _messages_page(request, session, deps, g)


@router.post("/groups/{group_id}/messages", response_model=None)
async def send_message(group_id: uuid.UUID, request: Request, session: StaffSession,
                       deps: DepsDep) -> Response:
    posted = await form_data(request)
    subject, body = str(posted.get("subject") or ""), str(posted.get("body") or "")
    everyone = bool(posted.get("include_subgroups"))
    form: dict[str, Any] = {"subject": subject, "body": body, "include_subgroups": everyone}
    g = await _group(session, deps, group_id)
    if g is None:
        return not_found(request, session, deps)
    if not check_csrf(request, session, posted):
        return await _messages_page(request, session, deps, g, errors=[EXPIRED], form=form,
                                    status=403)
    problems = gs.message_problems(subject, body)
    if not problems:
        try:
            sent = await gs.send_message(request.app.state.runtime.pool, deps, session,
                                         group_id, subject=subject, body=body,
                                         include_subgroups=everyone)
        except service.ApiError as exc:
            if exc.status not in (409, 422):
                raise
            problems = [FieldProblem("body", "Message", "The message was not sent: "
                                     + exc.detail)]
        else:
            return redirect(f"/console/groups/{group_id}/messages/{sent['message_id']}?sent=1")
    return await _messages_page(request, session, deps, g, errors=problems, form=form,
                                status=422)


async def _message(request: Request, session: PageSession, deps: Deps, group_id: uuid.UUID,
                   message_id: uuid.UUID) -> tuple[dict[str, Any], dict[str, Any]] | None:
    g = await _group(session, deps, group_id)
    kept = await gs.sent_message(request.app.state.runtime.pool, message_id)
    if g is None or kept is None or str(kept["group_id"]) != str(group_id):
        return None
    return g, kept


@router.get("/groups/{group_id}/messages/{message_id}", response_class=HTMLResponse)
async def message_status(group_id: uuid.UUID, message_id: uuid.UUID, request: Request,
                         session: StaffSession, deps: DepsDep) -> Response:
    found = await _message(request, session, deps, group_id, message_id)
    if found is None:
        return not_found(request, session, deps, "message")
    g, kept = found
    filters = {"status": _q(request, "status", 20)}
    cursor = _q(request, "cursor", 500) or None
    # the page asks again every 2 s while deliveries wait (htmx): only the counts then;
    # once none wait, the whole page loads again with the deliveries' final statuses
    polling = request.headers.get("HX-Request") == "true"
    rows: dict[str, Any] = {"items": [], "next_cursor": None}
    names: dict[str, str] = {}
    try:
        status = await gs.message_status(deps, session, message_id)
    except service.ApiError as exc:
        if exc.status != 404:
            raise
        status = None  # notify has not read the message's first part yet
    if polling and status is not None and not gs.still_sending(status):
        return Response(status_code=200, headers={"HX-Refresh": "true", **NO_STORE})
    if status is not None and not polling:
        rows = await gs.deliveries(deps, session, message_id, status=filters["status"],
                                   cursor=cursor)
        if any(d.get("customer_id") for d in rows["items"]):
            names = await gs.member_names(deps, session, group_id)
    requeued = request.query_params.get("requeued")
    notice = ("The message is on its way. The status below updates by itself."
              if request.query_params.get("sent") else
              f"{requeued} failed email{'s' if requeued != '1' else ''} will be sent again."
              if requeued and requeued.isdigit() else None)
    return group_page(request, "group_message.html", session, deps, g,
                      f"/console/groups/{group_id}/messages", message=kept, counts=status,
                      deliveries=rows["items"], names=names, filters=filters,
                      delivery_statuses=gs.DELIVERY_STATUSES, channels=gs.CHANNELS,
                      delivery_options=gs.options(gs.DELIVERY_STATUSES),
                      notice=notice,
                      **_paged(f"/console/groups/{group_id}/messages/{message_id}", filters,
                               rows.get("next_cursor"), cursor))


@router.post("/groups/{group_id}/messages/{message_id}/resend-failed", response_model=None)
async def resend_failed(group_id: uuid.UUID, message_id: uuid.UUID, request: Request,
                        session: StaffSession, deps: DepsDep) -> Response:
    posted = await form_data(request)
    url = f"/console/groups/{group_id}/messages/{message_id}"
    if not check_csrf(request, session, posted):
        return redirect(url)
    if await _message(request, session, deps, group_id, message_id) is None:
        return not_found(request, session, deps, "message")
    requeued = await gs.resend_failed(deps, session, message_id)
    return redirect(f"{url}?requeued={requeued}")


# -- the Assessment Dashboard ---------------------------------------------------------------

def _dashboard_filters(request: Request) -> tuple[dict[str, Any], dict[str, Any],
                                                   list[FieldProblem]]:
    start_text, end_text = _q(request, "from", 20), _q(request, "to", 20)
    everyone = request.query_params.get("include_subgroups", "1") != "0"
    raw: dict[str, Any] = {"from": start_text, "to": end_text, "include_subgroups": everyone}
    start, end, problems = gs.date_range(start_text, end_text)
    return raw, gs.dashboard_params(start, end, everyone), problems


@router.get("/groups/{group_id}/dashboard", response_class=HTMLResponse)
async def dashboard(group_id: uuid.UUID, request: Request, session: StaffSession,
                    deps: DepsDep) -> Response:
    g = await _group(session, deps, group_id)
    if g is None:
        return not_found(request, session, deps)
    raw, params, problems = _dashboard_filters(request)
    board = None
    if not problems:
        try:
            board = await service.api(deps, session, "readiness", "GET",
                                      f"/v1/groups/{group_id}/assessment-dashboard",
                                      params=params)
        except service.ApiError as exc:
            if exc.status == 404:
                return not_found(request, session, deps)
            if exc.status != 422:
                raise
            problems = [FieldProblem("from", "From", exc.detail)]
    query = urlencode({k: v for k, v in params.items()})
    return group_page(request, "group_dashboard.html", session, deps, g,
                      f"/console/groups/{group_id}/dashboard", board=board, raw=raw,
                      query=query, errors=problems, status=422 if problems else 200)


@router.get("/groups/{group_id}/dashboard/{code}", response_class=HTMLResponse)
async def dashboard_people(group_id: uuid.UUID, code: str, request: Request,
                           session: StaffSession, deps: DepsDep) -> Response:
    g = await _group(session, deps, group_id)
    if g is None:
        return not_found(request, session, deps)
    return await _people_page(request, session, deps, g, code)


async def _people_page(request: Request, session: PageSession, deps: Deps,
                       g: dict[str, Any], code: str, *,
                       errors: list[FieldProblem] | None = None,
                       form: dict[str, Any] | None = None, status: int = 200) -> Response:
    group_id = g["id"]
    raw, params, problems = _dashboard_filters(request)
    if problems:
        params = gs.dashboard_params(None, None, raw["include_subgroups"])
    who = _q(request, "status", 20)
    cursor = _q(request, "cursor", 500) or None
    query = {**params, **({"status": who} if who in ("completed", "not_completed") else {})}
    try:
        found = await gs.dashboard_people(deps, session, group_id, code,
                                          params={**query, "limit": 50,
                                                  **({"cursor": cursor} if cursor else {})})
    except service.ApiError as exc:
        if exc.status in (404, 422):
            return not_found(request, session, deps, "assessment")
        raise
    base = f"/console/groups/{group_id}/dashboard/{code}"
    filters = {k: str(v) for k, v in query.items()}
    catalogue = await gs.catalogue(deps, session)
    name = next((a["name"] for a in catalogue.get("assessments", []) if a["code"] == code),
                code)
    return group_page(request, "group_dashboard_people.html", session, deps, g,
                      f"/console/groups/{group_id}/dashboard", code=code, name=name,
                      people=found["items"], who=who, raw=raw, errors=errors,
                      form=form or {"subject": f"Please complete the {name}", "body": ""},
                      status=status, csv_url=f"{base}/csv?" + urlencode(filters),
                      remind_url=f"{base}/reminders?" + urlencode(filters),
                      back_url=f"/console/groups/{group_id}/dashboard?" + urlencode(
                          {k: v for k, v in params.items()}),
                      **_paged(base, filters, found.get("next_cursor"), cursor))


@router.post("/groups/{group_id}/dashboard/{code}/reminders", response_model=None)
async def remind(group_id: uuid.UUID, code: str, request: Request, session: StaffSession,
                 deps: DepsDep) -> Response:
    """readiness sends one group message to everyone who has not completed the assessment
    (through groups, as this staff member); its status page is the message's."""
    posted = await form_data(request)
    subject, body = str(posted.get("subject") or ""), str(posted.get("body") or "")
    form = {"subject": subject, "body": body}
    g = await _group(session, deps, group_id)
    if g is None:
        return not_found(request, session, deps)
    if not check_csrf(request, session, posted):
        return await _people_page(request, session, deps, g, code, errors=[EXPIRED],
                                  form=form, status=403)
    problems = gs.message_problems(subject, body)
    if not problems:
        _, params, _ = _dashboard_filters(request)
        try:
            sent = await gs.remind(request.app.state.runtime.pool, deps, session, group_id,
                                   code, subject=subject, body=body, params=params)
        except service.ApiError as exc:
            if exc.status == 404:
                return not_found(request, session, deps)
            if exc.status not in (409, 422):
                raise
            problems = [FieldProblem("subject", "Reminder", "The reminder was not sent: "
                                     + exc.detail)]
        else:
            return redirect(f"/console/groups/{group_id}/messages/{sent['message_id']}?sent=1")
    return await _people_page(request, session, deps, g, code, errors=problems, form=form,
                              status=422)


@router.get("/groups/{group_id}/dashboard/{code}/csv", response_model=None)
async def dashboard_csv(group_id: uuid.UUID, code: str, request: Request,
                        session: StaffSession, deps: DepsDep) -> Response:
    """The people list as CSV, fetched with the session's token (a link to /api/... would
    carry no token: the browser holds only the page cookie)."""
    raw, params, problems = _dashboard_filters(request)
    if problems:
        params = gs.dashboard_params(None, None, raw["include_subgroups"])
    who = _q(request, "status", 20)
    if who in ("completed", "not_completed"):
        params["status"] = who
    try:
        r = await gs.dashboard_csv(deps, session, group_id, code, params=params)
    except service.ApiError as exc:
        if exc.status in (404, 422):
            return not_found(request, session, deps, "assessment")
        raise
    safe = "".join(c for c in code if c.isalnum() or c in "-_")[:60] or "assessment"
    return Response(r.content, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{safe}.csv"',
        "Cache-Control": "no-store"})


# -- a customer reached through a group -----------------------------------------------------

@router.get("/people/{customer_id}", response_class=HTMLResponse)
async def customer(customer_id: uuid.UUID, request: Request, session: StaffSession,
                   deps: DepsDep) -> Response:
    try:
        account = await service.api(deps, session, "identity", "GET",
                                    f"/v1/customers/{customer_id}")
    except service.ApiError as exc:
        if exc.status == 404:
            return not_found(request, session, deps, "customer")
        raise
    extras = await gs.customer_extras(deps, session, customer_id)
    invited = request.query_params.get("invited")
    notice = "The invitation is sent: the customer sees it in the portal." if invited else None
    return page(request, "group_customer.html", session, deps, "/console", account=account,
                notice=notice, **extras)


@router.post("/people/{customer_id}/invitations", response_model=None)
async def invite_customer(customer_id: uuid.UUID, request: Request, session: StaffSession,
                          deps: DepsDep) -> Response:
    posted = await form_data(request)
    back = f"/console/people/{customer_id}"
    if not check_csrf(request, session, posted):
        return redirect(back)
    try:
        group_id = uuid.UUID(str(posted.get("group_id") or ""))
    except ValueError:
        return redirect(back)
    try:
        await gs.invite(deps, session, group_id, [], [str(customer_id)])
    except service.ApiError as exc:
        if exc.status == 404:
            return not_found(request, session, deps)
        raise
    return redirect(f"{back}?invited=1")
