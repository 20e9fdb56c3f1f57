"""A customer's groups, joining a group by its web address and passcode, invitations
(accept or decline) and the inbox."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway import service
from gateway.api.web import (
    CustomerSession,
    DepsDep,
    OptionalSession,
    Redirect,
    check_csrf,
    client_address,
    customer_session,
    form_data,
    redirect,
    render,
    signed_in,
)
from gateway.deps import Deps
from gateway.domain import FieldProblem, PageSession
from gateway.service import customer as svc
from shared.servicekit.errors import TooManyRequests

router = APIRouter(include_in_schema=False)
EXPIRED = FieldProblem("passcode", "Form", "The form expired. Please try again.")
# the last part of a group's web address (groups' join codes)
JOIN_CODE = re.compile(r"[a-z0-9]{6,32}")
NOTICES = {"declined": "You declined the invitation."}
KINDS = {"personal": "Staff group", "lwia": "Local workforce area (LWIA)",
         "program": "Special program"}
SOURCES = {"passcode": "With the passcode", "invitation": "By invitation",
           "staff": "Added by staff", "iwds": "From your IWDS record",
           "program": "Program enrollment"}


def customer_page(request: Request, template: str, session: PageSession, deps: Deps,
                  current: str, **context: Any) -> HTMLResponse:
    return render(request, template, session=session, deps=deps, current=current,
                  **context)


def not_found(request: Request, session: PageSession, deps: Deps, heading: str,
              message: str, current: str) -> HTMLResponse:
    return customer_page(request, "error.html", session, deps, current, status=404,
                         heading=heading, message=message)


# -- my groups ---------------------------------------------------------------------------

@router.get("/groups", response_class=HTMLResponse)
async def my_groups(request: Request, session: CustomerSession, deps: DepsDep) -> Response:
    groups = await svc.my_groups(deps, session)
    joined = request.query_params.get("joined", "")
    name = next((g["name"] for g in groups if g["group_id"] == joined), None)
    notice = f"You joined {name}." if name else None
    return customer_page(request, "my_groups.html", session, deps, "/groups",
                         groups=groups, notice=notice, kinds=KINDS, sources=SOURCES)


# -- joining by web address and passcode -------------------------------------------------

def _code_of(address: str) -> str | None:
    """The join code from what a customer pasted: the whole address or its last part."""
    text = address.strip().rstrip("/").split("?")[0].split("#")[0]
    code = text.rsplit("/", 1)[-1].strip().lower()
    return code if JOIN_CODE.fullmatch(code) else None


@router.get("/join", response_class=HTMLResponse)
async def join_start(request: Request, session: CustomerSession, deps: DepsDep) -> Response:
    return customer_page(request, "join_start.html", session, deps, "/groups", address="")


@router.post("/join", response_model=None)
async def join_address(request: Request, session: CustomerSession, deps: DepsDep
                       ) -> Response:
    posted = await form_data(request)
    address = str(posted.get("address") or "")[:500]
    code = _code_of(address)
    if not check_csrf(request, session, posted) or code is None:
        problem = (FieldProblem("address", "Group web address",
                                "Enter the group's web address as you were given it, like "
                                "https://portal.example/join/k7m2p9xq4r.")
                   if code is None else FieldProblem("address", "Form",
                                                     "The form expired. Please try again."))
        return customer_page(request, "join_start.html", session, deps, "/groups",
                             address=address, errors=[problem], status=422)
    return redirect(f"/join/{code}")


async def _join_session(request: Request, session: PageSession | None, code: str
                        ) -> PageSession:
    """A customer's session; someone not signed in is sent to sign in and back here."""
    if session is None:
        raise Redirect(f"/signin?next=/join/{code}")
    return await customer_session(await signed_in(request, session))


async def _join_page(request: Request, session: PageSession, deps: Deps, code: str, *,
                     errors: list[FieldProblem] | None = None, status: int = 200,
                     stopped: str | None = None) -> Response:
    target = await svc.join_target(deps, session, code) if JOIN_CODE.fullmatch(code) else None
    if target is None:
        return not_found(request, session, deps, "No group has this web address",
                         "Check the address you were given, or ask the staff who gave it "
                         "to you.", "/groups")
    return customer_page(request, "join.html", session, deps, "/groups", target=target,
                         errors=errors, status=status, stopped=stopped)


@router.get("/join/{code}", response_class=HTMLResponse)
async def join_page(code: str, request: Request, session: OptionalSession, deps: DepsDep
                    ) -> Response:
    code = code.lower()[:64]
    me = await _join_session(request, session, code)
    return await _join_page(request, me, deps, code)


@router.post("/join/{code}", response_model=None)
async def join(code: str, request: Request, session: OptionalSession, deps: DepsDep
               ) -> Response:
    code = code.lower()[:64]
    me = await _join_session(request, session, code)
    posted = await form_data(request)
    passcode = str(posted.get("passcode") or "").strip()[:64]
    if not check_csrf(request, me, posted):
        return await _join_page(request, me, deps, code, errors=[EXPIRED], status=403)
    if not passcode:
        return await _join_page(request, me, deps, code, status=422, errors=[FieldProblem(
            "passcode", "Passcode", "Enter the group's passcode.")])
    try:
        await service.count_attempt(request.app.state.runtime.pool, deps, "gateway:groups:join",
                                    client_address(request))
        group_id = await svc.join(deps, me, code, passcode)
    except TooManyRequests as exc:
        return await _join_page(request, me, deps, code, status=429,
                                stopped=_wait_text(exc.retry_after))
    except service.ApiError as exc:
        if exc.status == 403:
            return await _join_page(request, me, deps, code, status=403, errors=[FieldProblem(
                "passcode", "Passcode", "That passcode is not right. Check it and try "
                "again.")])
        if exc.status in (404, 409):
            return await _join_page(request, me, deps, code, status=409)
        raise
    return redirect(f"/groups?joined={group_id}")


def _wait_text(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many wrong passcodes. Try again in {minutes} {unit}."


# -- invitations -------------------------------------------------------------------------

@router.get("/invitations", response_class=HTMLResponse)
async def invitations(request: Request, session: CustomerSession, deps: DepsDep
                      ) -> Response:
    found = await svc.my_invitations(deps, session)
    done = request.query_params.get("done", "")
    return customer_page(request, "invitations.html", session, deps, "/invitations",
                         invitations=found, notice=NOTICES.get(done))


@router.post("/invitations/{invitation_id}/{action}", response_model=None)
async def answer(invitation_id: uuid.UUID, action: str, request: Request,
                 session: CustomerSession, deps: DepsDep) -> Response:
    posted = await form_data(request)
    if action not in ("accept", "decline") or not check_csrf(request, session, posted):
        return redirect("/invitations")
    try:
        found = await svc.answer_invitation(deps, session, invitation_id, action == "accept")
    except service.ApiError as exc:
        if exc.status not in (404, 409, 410):
            raise
        pending = await svc.my_invitations(deps, session)
        return customer_page(
            request, "invitations.html", session, deps, "/invitations", invitations=pending,
            status=exc.status, problem="This invitation can no longer be answered: it was "
            "already answered, withdrawn or it expired. Ask the staff who invited you for a "
            "new one if you still want to join.")
    if action == "accept":
        return redirect(f"/groups?joined={found['group_id']}")
    return redirect("/invitations?done=declined")


# -- the inbox -----------------------------------------------------------------------------

@router.get("/inbox", response_class=HTMLResponse)
async def inbox(request: Request, session: CustomerSession, deps: DepsDep) -> Response:
    cursor = (request.query_params.get("cursor") or "")[:500] or None
    found = await svc.inbox(deps, session, cursor)
    return customer_page(request, "inbox.html", session, deps, "/inbox",
                         items=found["items"], unread=found.get("unread", 0),
                         next_cursor=found.get("next_cursor"), paged=cursor is not None)


@router.get("/inbox/{item_id}", response_class=HTMLResponse)
async def message(item_id: str, request: Request, session: CustomerSession, deps: DepsDep
                  ) -> Response:
    """Opening a message marks it read (notify keeps the first time)."""
    gone = ("We could not find that message", "It is not in your inbox. Go back to your "
            "inbox and choose a message from the list.")
    try:
        wanted = uuid.UUID(item_id)
    except ValueError:
        return not_found(request, session, deps, *gone, "/inbox")
    try:
        item = await svc.open_message(deps, session, wanted)
    except service.ApiError as exc:
        if exc.status != 404:
            raise
        return not_found(request, session, deps, *gone, "/inbox")
    return customer_page(request, "message.html", session, deps, "/inbox", item=item)
