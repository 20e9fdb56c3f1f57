"""Sign-in, the forced password change and sign-out (staff and customers alike)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway import service
from gateway.api.web import (
    DepsDep,
    OptionalSession,
    SignedInSession,
    check_csrf,
    clear_session_cookie,
    client_address,
    form_data,
    redirect,
    render,
    set_session_cookie,
)
from gateway.domain import FieldProblem, field_problems
from shared.servicekit.errors import TooManyRequests

router = APIRouter(include_in_schema=False)
EXPIRED = FieldProblem("form", "Form", "The form expired. Please try again.")
PASSWORD_FIELDS = {"current_password": ("current_password", "Current password"),
                   "new_password": ("new_password", "New password")}


def home_of(kind: str, restricted: bool) -> str:
    if restricted:
        return "/account/password"
    return "/console" if kind == "staff" else "/me"


@router.get("/", response_model=None)
async def start(session: OptionalSession) -> Response:
    if session is None:
        return redirect("/signin")
    return redirect(home_of(session.kind, session.password_change_required))


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, session: OptionalSession, deps: DepsDep) -> Response:
    return render(request, "signin.html", session=session, deps=deps, username="",
                  next=after_signin(request.query_params.get("next")))


# where sign-in may lead back to (a group's join page opened before signing in); any
# other address is ignored, so the page cannot be made to send people elsewhere
_NEXT = re.compile(r"/join/[a-z0-9]{6,32}")


def after_signin(value: object) -> str:
    return value if isinstance(value, str) and _NEXT.fullmatch(value) else ""


@router.post("/signin", response_model=None)
async def signin(request: Request, session: OptionalSession, deps: DepsDep) -> Response:
    form = await form_data(request)
    username = str(form.get("username") or "").strip()[:200]
    password = str(form.get("password") or "")[:1024]
    after = after_signin(form.get("next"))

    def again(errors: list[FieldProblem], status: int = 422) -> Response:
        return render(request, "signin.html", session=session, deps=deps, status=status,
                      errors=errors, username=username, next=after)

    if not check_csrf(request, session, form):
        return again([EXPIRED], 403)
    missing = [FieldProblem(f, label, f"Enter your {label.lower()}.")
               for f, label, v in (("username", "Username", username),
                                   ("password", "Password", password)) if not v]
    if missing:
        return again(missing)
    try:
        done = await service.sign_in(
            request.app.state.runtime.pool, deps, request.app.state.verifier,
            username=username, password=password, client=client_address(request),
            current=session)
    except service.SignInFailed:
        return again([FieldProblem("username", "Username",
                                   "The username or password is not right.")], 401)
    except TooManyRequests as exc:
        return again([FieldProblem("username", "Username",
                                   f"Too many sign-in attempts. Try again in {exc.retry_after}"
                                   " seconds.")], 429)
    home = home_of(done.session.kind, done.session.password_change_required)
    response = redirect(after if after and home == "/me" else home)
    set_session_cookie(response, deps, done.cookie)
    return response


@router.get("/account/password", response_class=HTMLResponse)
async def password_page(request: Request, session: SignedInSession, deps: DepsDep) -> Response:
    return render(request, "change_password.html", session=session, deps=deps)


@router.post("/account/password", response_model=None)
async def change_password(request: Request, session: SignedInSession, deps: DepsDep
                          ) -> Response:
    form = await form_data(request)

    def again(errors: list[FieldProblem], status: int = 422) -> Response:
        return render(request, "change_password.html", session=session, deps=deps,
                      status=status, errors=errors)

    if not check_csrf(request, session, form):
        return again([EXPIRED], 403)
    current = str(form.get("current_password") or "")
    new = str(form.get("new_password") or "")
    confirm = str(form.get("new_password_confirmation") or "")
    errors = []
    if not current:
        errors.append(FieldProblem("current_password", "Current password",
                                   "Enter your current password."))
    if not new:
        errors.append(FieldProblem("new_password", "New password", "Enter a new password."))
    elif new != confirm:
        errors.append(FieldProblem("new_password_confirmation", "Confirm new password",
                                   "The two new passwords are not the same."))
    if errors:
        return again(errors)
    try:
        done = await service.change_password(
            request.app.state.runtime.pool, deps, request.app.state.verifier, session,
            current_password=current, new_password=new)
    except service.ApiError as exc:
        problems = field_problems(exc.problem, PASSWORD_FIELDS)
        return again(problems or [FieldProblem("current_password", "Current password",
                                               exc.detail)], exc.status)
    response = redirect(home_of(done.session.kind, False) + "?changed=1")
    set_session_cookie(response, deps, done.cookie)
    return response


@router.post("/signout", response_model=None)
async def signout(request: Request, session: OptionalSession, deps: DepsDep) -> Response:
    form = await form_data(request)
    if session is not None and check_csrf(request, session, form):
        await service.sign_out(request.app.state.runtime.pool, deps, session)
    elif session is not None:
        return render(request, "error.html", session=session, deps=deps, status=403,
                      heading="Sign-out did not happen",
                      message="The form expired. Use the Sign out button again.")
    response = render(request, "signin.html", session=None, deps=deps, username="",
                      notice="You are signed out.")
    clear_session_cookie(response, deps)
    return response


