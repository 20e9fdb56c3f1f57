"""A customer's own calls: their groups (groups), joining by web address and passcode,
invitations to them, and their inbox (notify)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from gateway.deps import Deps
from gateway.domain import PageSession
from gateway.service import ApiError, _problem, api, call
from shared.servicekit.errors import TooManyRequests

INBOX_PAGE = 20


@dataclass(frozen=True)
class JoinTarget:
    join_code: str
    name: str
    open: bool  # False: the owner switched joining by passcode off


async def my_groups(deps: Deps, session: PageSession) -> list[dict[str, Any]]:
    found = await api(deps, session, "groups", "GET", "/v1/me/groups")
    return list(found["items"])


async def join_target(deps: Deps, session: PageSession, join_code: str) -> JoinTarget | None:
    """The group a web address names; None for an address that names none."""
    try:
        found = await api(deps, session, "groups", "GET", f"/v1/join/{join_code}")
    except ApiError as exc:
        if exc.status in (404, 422):
            return None
        raise
    return JoinTarget(join_code, str(found["name"]), bool(found["open"]))


async def join(deps: Deps, session: PageSession, join_code: str, passcode: str
               ) -> uuid.UUID:
    """Joins; ApiError 403 (wrong passcode) or 409 (switched off), TooManyRequests after
    too many wrong passcodes (with groups' Retry-After)."""
    r = await call(deps, "groups", "POST", "/v1/join", token=session.access_token,
                   json={"join_code": join_code, "passcode": passcode})
    if r.status_code == 429:
        retry = r.headers.get("retry-after", "")
        raise TooManyRequests("too many wrong passcodes",
                              retry_after=int(retry) if retry.isdigit() else 900)
    if r.status_code >= 400:
        raise _problem(r)
    return uuid.UUID(r.json()["group_id"])


async def my_invitations(deps: Deps, session: PageSession) -> list[dict[str, Any]]:
    found = await api(deps, session, "groups", "GET", "/v1/me/invitations")
    return list(found["items"])


async def answer_invitation(deps: Deps, session: PageSession, invitation_id: uuid.UUID,
                            accept: bool) -> dict[str, Any]:
    """Accepts or declines; ApiError 404 (not theirs) or 409 (already answered, expired)."""
    action = "accept" if accept else "decline"
    found: dict[str, Any] = await api(deps, session, "groups", "POST",
                                      f"/v1/invitations/{invitation_id}/{action}")
    return found


async def inbox(deps: Deps, session: PageSession, cursor: str | None) -> dict[str, Any]:
    """A page of the inbox, newest first: items, unread, next_cursor."""
    params: dict[str, Any] = {"limit": INBOX_PAGE}
    if cursor:
        params["cursor"] = cursor
    found: dict[str, Any] = await api(deps, session, "notify", "GET", "/v1/inbox",
                                      params=params)
    return found


async def unread(deps: Deps, session: PageSession) -> int:
    found = await api(deps, session, "notify", "GET", "/v1/inbox", params={"limit": 1})
    return int(found.get("unread") or 0)


async def open_message(deps: Deps, session: PageSession, item_id: uuid.UUID
                       ) -> dict[str, Any]:
    """The message, marked read (reading twice keeps the first time); ApiError 404 for
    an item that is not the customer's own."""
    found: dict[str, Any] = await api(deps, session, "notify", "POST",
                                      f"/v1/inbox/{item_id}/read")
    return found
