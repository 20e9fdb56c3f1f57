"""The customer's own pages: account home, registration, recovery (groups, invitations
and the inbox are in customer_groups)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway import service
from gateway.api.web import (
    CustomerSession,
    DepsDep,
    OptionalSession,
    check_csrf,
    client_address,
    form_data,
    redirect,
    render,
    set_session_cookie,
)
from gateway.domain import FieldProblem, field_problems
from gateway.service import customer
from shared.servicekit.errors import TooManyRequests

router = APIRouter(include_in_schema=False)
T = TypeVar("T")


@router.get("/me", response_class=HTMLResponse)
async def my_account(request: Request, session: CustomerSession, deps: DepsDep) -> Response:
    notice = "Your password is changed." if request.query_params.get("changed") else None
    unread, pending = await asyncio.gather(
        _or_none(customer.unread(deps, session)), _or_none(customer.my_invitations(deps,
                                                                                     session)))
    return render(request, "me.html", session=session, deps=deps, notice=notice,
                  current="/me", unread_text=_unread_text(unread),
                  invitations_text=_invitations_text(pending))


async def _or_none(call: Awaitable[T]) -> T | None:
    """A summary the page can go without: None when its service does not answer."""
    try:
        return await call
    except (service.Unavailable, service.ApiError):
        return None


def _unread_text(unread: int | None) -> str:
    if unread is None:
        return "Your messages cannot be counted right now. Open the inbox to read them."
    if unread == 0:
        return "You have no unread messages."
    return f"You have {unread} unread message{'s' if unread != 1 else ''}."


def _invitations_text(pending: list[Any] | None) -> str:
    if pending is None:
        return "Invitations to groups from Customer Support Center staff."
    if not pending:
        return "No invitations are waiting for you."
    n = len(pending)
    return f"{n} invitation{'s are' if n != 1 else ' is'} waiting for your answer."


REGISTER_FIELDS = {
    "username": ("username", "Username"), "password": ("password", "Password"),
    "first_name": ("first_name", "First Name"), "last_name": ("last_name", "Last Name"),
    "date_of_birth": ("date_of_birth", "Date of Birth"), "email": ("email", "Email address"),
    "ssn": ("ssn", "Social Security Number (Format: XXX-XX-XXXX)"),
}
RECOVERY_FIELDS = {"email": ("email", "Email address"),
                   "new_password": ("new_password", "New password"),
                   "token": ("new_password", "Recovery link")}


REGISTRATION_HELD = (
    "We could not open an account with these details. You may already have one: use "
    "\"Forgot your password?\" on the sign-in page, check your email, or see staff at "
    "your local office.")


@router.get("/register", response_class=HTMLResponse)
async def register_page(request: Request, session: OptionalSession, deps: DepsDep
                        ) -> Response:
    return render(request, "register.html", session=session, deps=deps, form={})


@router.post("/register", response_model=None)
async def register(request: Request, session: OptionalSession, deps: DepsDep) -> Response:
    """Identity's registration (the same matcher staff use finds an existing account)."""
    posted = await form_data(request)
    body = {k: str(posted.get(k) or "").strip() for k in REGISTER_FIELDS}
    body["password"] = str(posted.get("password") or "")
    echo = {k: v for k, v in body.items() if k not in ("password", "ssn")}

    def again(errors: list[FieldProblem], status: int) -> Response:
        return render(request, "register.html", session=session, deps=deps, form=echo,
                      errors=errors, status=status)

    if not check_csrf(request, session, posted):
        return again([FieldProblem("username", "Form", "The form expired. Please try again.")],
                     403)
    pool = request.app.state.runtime.pool
    try:
        await service.count_attempt(pool, deps, "gateway:identity:registrations",
                                    client_address(request))
    except TooManyRequests as exc:
        return again([FieldProblem("username", "Username", "Too many attempts. Try again in "
                                   f"{exc.retry_after} seconds.")], 429)
    payload = {k: v for k, v in body.items() if v or k in ("username", "password")}
    r = await service.call(deps, "identity", "POST", "/v1/registrations", json=payload)
    if r.status_code == 409:  # the username is taken (the person is not looked for then)
        return again([FieldProblem("username", "Username", "That username is taken. "
                                   "Choose another.")], 409)
    if r.status_code >= 400:
        problem = r.json() if r.headers.get("content-type", "").endswith("json") else {}
        return again(field_problems(problem, REGISTER_FIELDS)
                     or [FieldProblem("username", "Form", "That did not work.")], r.status_code)
    # identity answers alike whether it made the account or held the attempt for staff
    # (the person may have one already); signing in with the new password tells which
    try:
        done = await service.sign_in(pool, deps, request.app.state.verifier,
                                     username=body["username"], password=body["password"],
                                     client=client_address(request), current=session)
    except (service.SignInFailed, TooManyRequests):
        return render(request, "register.html", session=session, deps=deps, form={},
                      notice=REGISTRATION_HELD)
    response = redirect("/me")
    set_session_cookie(response, deps, done.cookie)
    return response


@router.get("/recover", response_class=HTMLResponse)
async def recover_page(request: Request, session: OptionalSession, deps: DepsDep
                       ) -> Response:
    token = (request.query_params.get("token") or "")[:200]
    return render(request, "recover.html", session=session, deps=deps, token=token, sent=False)


@router.post("/recover", response_model=None)
async def recover(request: Request, session: OptionalSession, deps: DepsDep) -> Response:
    posted = await form_data(request)
    token = str(posted.get("token") or "")[:200]

    def again(errors: list[FieldProblem], status: int, sent: bool = False) -> Response:
        return render(request, "recover.html", session=session, deps=deps, token=token,
                      errors=errors, status=status, sent=sent)

    if not check_csrf(request, session, posted):
        return again([FieldProblem("email", "Form", "The form expired. Please try again.")],
                     403)
    try:
        await service.count_attempt(request.app.state.runtime.pool, deps,
                                    "gateway:identity:password-recovery",
                                    client_address(request))
    except TooManyRequests as exc:
        return again([FieldProblem("email", "Email address", "Too many attempts. Try again in "
                                   f"{exc.retry_after} seconds.")], 429)
    if token:
        new = str(posted.get("new_password") or "")
        if new != str(posted.get("new_password_confirmation") or ""):
            return again([FieldProblem("new_password_confirmation", "Confirm new password",
                                       "The two new passwords are not the same.")], 422)
        r = await service.call(deps, "identity", "POST", "/v1/password-recovery/complete",
                               json={"token": token, "new_password": new})
        if r.status_code >= 400:
            problem = r.json() if r.headers.get("content-type", "").endswith("json") else {}
            return again(field_problems(problem, RECOVERY_FIELDS) or [FieldProblem(
                "new_password", "Recovery link", "This link no longer works: ask for a new "
                "one.")], r.status_code)
        page = render(request, "signin.html", session=None, deps=deps, username="",
                      notice="Your password is changed. Sign in with it.")
        return page
    email = str(posted.get("email") or "").strip()
    if "@" not in email:
        return again([FieldProblem("email", "Email address",
                                   "Enter the email address on your account.")], 422)
    await service.call(deps, "identity", "POST", "/v1/password-recovery", json={"email": email})
    return again([], 200, sent=True)
