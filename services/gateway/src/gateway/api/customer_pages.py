"""The customer's own pages (groups, invitations and the inbox arrive with their services)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway.api.web import CustomerSession, DepsDep, render

router = APIRouter(include_in_schema=False)


@router.get("/me", response_class=HTMLResponse)
async def my_account(request: Request, session: CustomerSession, deps: DepsDep) -> Response:
    notice = "Your password is changed." if request.query_params.get("changed") else None
    return render(request, "me.html", session=session, deps=deps, notice=notice)
