"""What every page shares: templates, the session from the cookie, CSRF, rendering."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from gateway import service
from gateway.deps import Deps
from gateway.domain import (
    ANON_CSRF_COOKIE,
    SESSION_COOKIE,
    FieldProblem,
    PageSession,
    csrf_matches,
    new_csrf,
)
from shared.servicekit.runtime import get_deps

HERE = Path(__file__).resolve().parents[1]
templates = Jinja2Templates(directory=str(HERE / "templates"))


@pass_context
def _when(ctx: Any, value: Any) -> str:
    """An ISO timestamp as the portal's people read it, in the portal's zone."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    zone = ctx.get("zone")
    local = moment.astimezone(zone) if zone else moment
    hour = local.strftime("%I:%M %p").lstrip("0")
    return f"{local.strftime('%B')} {local.day}, {local.year} at {hour} {local.tzname()}"


templates.env.filters["when"] = _when
STATIC = HERE / "static"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# pages a customer with a temporary password may see: the change itself and sign-out
FORCED_CHANGE_PATHS = ("/account/password", "/signout")

DepsDep = Annotated[Deps, Depends(get_deps)]


class Redirect(Exception):
    """Raised by a page dependency: answer with a redirect instead."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


async def optional_session(request: Request, deps: DepsDep) -> PageSession | None:
    pool = request.app.state.runtime.pool
    return await service.load_session(pool, deps, request.cookies.get(SESSION_COOKIE))


OptionalSession = Annotated[PageSession | None, Depends(optional_session)]


async def signed_in(request: Request, session: OptionalSession) -> PageSession:
    if session is None:
        raise Redirect("/signin")
    if session.password_change_required and not request.url.path.startswith(
            FORCED_CHANGE_PATHS):
        raise Redirect("/account/password")
    return session


SignedInSession = Annotated[PageSession, Depends(signed_in)]


async def staff_session(session: SignedInSession) -> PageSession:
    if not session.is_staff:
        raise Redirect("/me")
    return session


StaffSession = Annotated[PageSession, Depends(staff_session)]


async def customer_session(session: SignedInSession) -> PageSession:
    if session.is_staff:
        raise Redirect("/console")
    return session


CustomerSession = Annotated[PageSession, Depends(customer_session)]


async def form_data(request: Request) -> dict[str, Any]:
    """The posted form; a field given more than once (multi-select) becomes a list."""
    form = await request.form()
    out: dict[str, Any] = {}
    for key in form:
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        out[key] = values if len(values) > 1 else (values[0] if values else "")
    return out


def check_csrf(request: Request, session: PageSession | None, form: dict[str, Any]) -> bool:
    expected = session.csrf_token if session else request.cookies.get(ANON_CSRF_COOKIE)
    given = form.get("csrf_token")
    return csrf_matches(expected, given if isinstance(given, str) else None)


def anon_csrf(request: Request) -> str:
    return request.cookies.get(ANON_CSRF_COOKIE) or new_csrf()


def set_session_cookie(response: Response, deps: Deps, cookie: str) -> None:
    response.set_cookie(SESSION_COOKIE, cookie, httponly=True,
                        secure=deps.settings.secure_cookies, samesite="strict", path="/")


def clear_session_cookie(response: Response, deps: Deps) -> None:
    response.delete_cookie(SESSION_COOKIE, httponly=True,
                           secure=deps.settings.secure_cookies, samesite="strict", path="/")


def render(
    request: Request, template: str, *, session: PageSession | None, deps: Deps,
    status: int = 200, errors: list[FieldProblem] | None = None, **context: Any,
) -> HTMLResponse:
    csrf = session.csrf_token if session else anon_csrf(request)
    response = templates.TemplateResponse(
        request, template,
        {"session": session, "csrf_token": csrf, "errors": errors or [],
         "error_for": {e.field: e.message for e in (errors or [])},
         "zone": deps.settings.zone, **context},
        status_code=status, headers=NO_STORE,
    )
    if session is None and request.cookies.get(ANON_CSRF_COOKIE) != csrf:
        response.set_cookie(ANON_CSRF_COOKIE, csrf, httponly=True,
                            secure=deps.settings.secure_cookies, samesite="strict", path="/")
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=NO_STORE)


# the staff console's side navigation (administrators see their pages too)
SIDE_NAV = (("/console", "My groups"), ("/console/returning-citizens", "Returning Citizens"),
            ("/console/duplicates", "Possible duplicates"))
ADMIN_NAV = (("/console/programs", "Program authorization"), ("/console/iwds", "IWDS runs"),
             ("/console/hand-overs", "Hand over groups"))


def page(request: Request, template: str, session: PageSession, deps: Deps, current: str,
          **context: Any) -> HTMLResponse:
    nav = SIDE_NAV + ADMIN_NAV if session.is_admin else SIDE_NAV
    return render(request, template, session=session, deps=deps, side_nav=nav,
                  current=current, **context)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
