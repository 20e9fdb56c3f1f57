"""The people of a group, by hand: members added or removed by its owners, co-owners,
and (for administrators) a departing staff member's groups handed to another. The
staff member is named by username (a customer also by email) and found in groups'
directory. The pure rules at the top take no I/O and are unit-tested."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from gateway.deps import Deps
from gateway.domain import FieldProblem, PageSession
from gateway.service import ApiError, _problem, api, call

LOGIN_MAX = 200  # a username or an email address, as the form takes it
ROLE_NAMES = {"owner": "Owner", "co-owner": "Co-owner"}


# -- pure rules ------------------------------------------------------------------------

@dataclass(frozen=True)
class Login:
    """What a staff member typed to name a customer: a username or an email address."""

    by: str  # "username" or "email"
    value: str


def customer_login(text: str, field: str = "member") -> Login | FieldProblem:
    """The customer box: an email address (it has an @) or a username."""
    value = text.strip()
    label = "Username or email address"
    if not value:
        return FieldProblem(field, label, "Enter the customer's username or email address")
    if len(value) > LOGIN_MAX or any(c.isspace() for c in value):
        return FieldProblem(field, label, "Enter one username or one email address, "
                                          "with no spaces")
    if "@" in value:
        local, _, domain = value.partition("@")
        if not local or "." not in domain or "@" in domain:
            return FieldProblem(field, label,
                                "Enter an email address like name@example.com")
        return Login("email", value.lower())
    return Login("username", value)


def staff_username(text: str, field: str, label: str, missing: str) -> str | FieldProblem:
    """A staff username box: the text, or what is wrong with it (``missing`` when empty)."""
    value = text.strip()
    if not value:
        return FieldProblem(field, label, missing)
    if len(value) > LOGIN_MAX or any(c.isspace() for c in value):
        return FieldProblem(field, label, f"{label}: enter one username, with no spaces")
    return value


def person_name(first: str | None, last: str | None, username: str | None) -> str:
    """How a page names a person: "First Last (username)", or what there is of it."""
    name = " ".join(p for p in (first, last) if p)
    if name and username:
        return f"{name} ({username})"
    return name or username or "this person"


def staff_label(entry: dict[str, Any]) -> str:
    """A staff member from the directory or an owner row: "Name (username)"."""
    name, username = entry.get("name"), entry.get("username")
    if name and username:
        return f"{name} ({username})"
    return str(name or username or "A staff member not known yet")


def owner_rows(owners: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The group's owners as the page lists them: the owner first, then co-owners, each
    with a label, a role in words and whether a co-owner may remove them."""
    ordered = sorted(owners, key=lambda o: (o.get("role") != "owner",
                                            str(o.get("name") or o.get("username") or "")))
    return [{**o, "label": staff_label(o), "role_name": ROLE_NAMES.get(o["role"], o["role"]),
             "removable": o.get("role") == "co-owner"} for o in ordered]


def hand_over_notice(moved: int, giver: str, taker: str) -> str:
    """The outcome of a hand-over in plain words."""
    if moved == 0:
        return f"{giver} owns no personal groups, so nothing was moved."
    groups = "group" if moved == 1 else "groups"
    return f"{moved} {groups} moved from {giver} to {taker}."


def refusal(exc: ApiError) -> str:
    """A service's refusal as one sentence for the page: its field reason or detail."""
    for err in exc.problem.get("errors") or []:
        if isinstance(err, dict) and err.get("reason"):
            return str(err["reason"])
    return exc.detail


def sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else text


# -- calls -------------------------------------------------------------------------------

async def find_staff(deps: Deps, session: PageSession, username: str
                     ) -> dict[str, Any] | None:
    """A staff member by username from groups' directory; None when no one has it."""
    try:
        found: dict[str, Any] = await api(deps, session, "groups", "GET",
                                          "/v1/directory/staff",
                                          params={"username": username})
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return found


async def find_customers(deps: Deps, session: PageSession, login: Login
                         ) -> list[dict[str, Any]]:
    """The customers with this username or email whom the staff member reaches."""
    found = await api(deps, session, "groups", "GET", "/v1/directory/customers",
                      params={login.by: login.value})
    return list(found["items"])


async def add_member(deps: Deps, session: PageSession, group_id: uuid.UUID,
                     customer_id: str) -> bool:
    """True when the customer became a member (False: a member already)."""
    found = await api(deps, session, "groups", "POST", f"/v1/groups/{group_id}/members",
                      json={"customer_ids": [customer_id]})
    return bool(found["added"])


async def remove_member(deps: Deps, session: PageSession, group_id: uuid.UUID,
                        customer_id: uuid.UUID) -> None:
    await api(deps, session, "groups", "DELETE",
              f"/v1/groups/{group_id}/members/{customer_id}")


async def add_co_owner(deps: Deps, session: PageSession, group_id: uuid.UUID,
                       staff_id: str) -> bool:
    """True when the staff member became a co-owner (False: an owner already)."""
    r = await call(deps, "groups", "PUT", f"/v1/groups/{group_id}/owners/{staff_id}",
                   token=session.access_token)
    if r.status_code >= 400:
        raise _problem(r)
    return r.status_code == 201


async def remove_co_owner(deps: Deps, session: PageSession, group_id: uuid.UUID,
                          staff_id: uuid.UUID) -> None:
    await api(deps, session, "groups", "DELETE", f"/v1/groups/{group_id}/owners/{staff_id}")


async def hand_over(deps: Deps, session: PageSession, from_staff: str, to_staff: str
                    ) -> list[str]:
    """Every personal group the one owns goes to the other; the groups moved."""
    found = await api(deps, session, "groups", "POST", "/v1/hand-overs",
                      json={"from_staff_id": from_staff, "to_staff_id": to_staff})
    return [str(g) for g in found["group_ids"]]
