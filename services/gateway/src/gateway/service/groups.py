"""The staff pages for groups: what they ask groups, notify and readiness on the signed-in
staff member's behalf, and the small pure rules the pages use (form checks, labels, the
group tree). The pure functions at the top take no I/O and are unit-tested."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg
import httpx

from gateway import repository_groups as repo
from gateway.deps import Deps
from gateway.domain import FieldProblem, PageSession
from gateway.service import ApiError, _problem, api, call
from shared.servicekit.db import transaction

KINDS = (("personal", "Personal groups"), ("lwia", "LWIA groups"),
         ("program", "Special program groups"))
KIND_NAMES = {"personal": "Personal group", "lwia": "LWIA group",
              "program": "Special program group"}
# how a member joined (groups' `source`), in plain words
SOURCES = {"passcode": "Joined with the web address and passcode",
           "invitation": "Accepted an invitation", "staff": "Added by staff",
           "iwds": "From the IWDS record", "program": "Enrolled in the program"}
INVITATION_STATUSES = {"pending": "Invited: no answer yet", "accepted": "Accepted",
                       "declined": "Declined", "expired": "Expired", "revoked": "Withdrawn"}
DELIVERY_STATUSES = {"queued": "Waiting to be sent", "sent": "Sent",
                     "deferred": "Not sent yet: will try again", "failed": "Failed",
                     "suppressed": "Not sent: the address refuses email"}
CHANNELS = {"email": "Email", "inbox": "Portal inbox"}
SUBJECT_MAX, BODY_MAX = 200, 20_000
MAX_INVITES = 50
GROUPS_LISTED = 500  # per kind on My groups (groups' page limit)
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


# -- pure rules ------------------------------------------------------------------------

@dataclass
class GroupNode:
    id: str
    name: str
    kind: str
    member_count: int
    children: list[GroupNode] = field(default_factory=list)


def group_tree(items: list[dict[str, Any]]) -> list[GroupNode]:
    """Groups as a tree, by name: a group whose parent is not in the list (the staff
    member reaches a subgroup but not its parent) stands at the top."""
    nodes = {str(i["id"]): GroupNode(str(i["id"]), str(i["name"]), str(i["kind"]),
                                     int(i.get("member_count") or 0)) for i in items}
    top: list[GroupNode] = []
    for i in sorted(items, key=lambda i: (str(i["name"]).lower(), str(i["id"]))):
        node, parent = nodes[str(i["id"])], i.get("parent_id")
        if parent is not None and str(parent) in nodes:
            nodes[str(parent)].children.append(node)
        else:
            top.append(node)
    return top


def children_of(items: list[dict[str, Any]], group_id: uuid.UUID) -> list[dict[str, Any]]:
    """The direct subgroups of one group, by name."""
    return sorted((i for i in items if str(i.get("parent_id")) == str(group_id)),
                  key=lambda i: str(i["name"]).lower())


def name_problems(name: str) -> list[FieldProblem]:
    name = name.strip()
    if not name:
        return [FieldProblem("name", "Group name", "Enter a name for the group")]
    if len(name) > 200:
        return [FieldProblem("name", "Group name", "The name must be 200 characters or fewer")]
    return []


def message_problems(subject: str, body: str) -> list[FieldProblem]:
    """What is wrong with a message form, in the order of its fields."""
    out = []
    if not subject.strip():
        out.append(FieldProblem("subject", "Subject", "Enter a subject"))
    elif len(subject) > SUBJECT_MAX:
        out.append(FieldProblem("subject", "Subject",
                                f"The subject must be {SUBJECT_MAX} characters or fewer"))
    if not body.strip():
        out.append(FieldProblem("body", "Message", "Enter the message"))
    elif len(body) > BODY_MAX:
        out.append(FieldProblem("body", "Message",
                                f"The message must be {BODY_MAX:,} characters or fewer"))
    return out


def split_emails(text: str) -> tuple[list[str], list[str]]:
    """Addresses from a box (one a line, or separated by commas, semicolons or spaces):
    (good ones, without repeats and in order; the ones that are not addresses)."""
    good: list[str] = []
    bad: list[str] = []
    for part in re.split(r"[\s,;]+", text.strip()):
        if not part:
            continue
        if _EMAIL.match(part):
            if part.lower() not in (g.lower() for g in good):
                good.append(part)
        else:
            bad.append(part)
    return good, bad


def invite_form(emails_text: str, customer_text: str
                ) -> tuple[list[str], list[str], list[FieldProblem]]:
    """The invitation form: (emails, customer account ids, problems)."""
    problems: list[FieldProblem] = []
    emails, bad = split_emails(emails_text)
    if bad:
        shown = ", ".join(bad[:3]) + (" and more" if len(bad) > 3 else "")
        problems.append(FieldProblem(
            "emails", "Email addresses",
            f"Enter email addresses like name@example.com (not an address: {shown})"))
    customers: list[str] = []
    for part in re.split(r"[\s,;]+", customer_text.strip()):
        if not part:
            continue
        try:
            customers.append(str(uuid.UUID(part)))
        except ValueError:
            problems.append(FieldProblem(
                "customer_ids", "Customer account IDs",
                "Enter the customer's account ID as shown on their page"))
            break
    if not problems and not emails and not customers:
        problems.append(FieldProblem("emails", "Email addresses",
                                     "Enter an email address or a customer account ID"))
    if len(emails) + len(customers) > MAX_INVITES:
        problems.append(FieldProblem("emails", "Email addresses",
                                     f"Invite at most {MAX_INVITES} people at a time"))
    return emails, customers, problems


def date_range(start: str, end: str) -> tuple[date | None, date | None, list[FieldProblem]]:
    """The dashboard's date range from the form (both optional, both included)."""
    problems: list[FieldProblem] = []
    out: list[date | None] = []
    for key, label, value in (("from", "From", start), ("to", "To", end)):
        value = value.strip()
        if not value:
            out.append(None)
            continue
        try:
            out.append(date.fromisoformat(value))
        except ValueError:
            out.append(None)
            problems.append(FieldProblem(key, label, f"{label}: enter a date like 2026-03-31"))
    if out[0] and out[1] and out[0] > out[1]:
        problems.append(FieldProblem("to", "To", "To: the end date must be on or after the "
                                                 "start date"))
    return out[0], out[1], problems


def still_sending(status: dict[str, Any]) -> bool:
    """Whether a message's deliveries still wait to be sent (notify's counts)."""
    return int((status.get("counts") or {}).get("queued") or 0) > 0


def options(labels: dict[str, str]) -> list[dict[str, str]]:
    """A label map as the select macro's options."""
    return [{"code": k, "name": v} for k, v in labels.items()]


# -- calls -------------------------------------------------------------------------------

async def my_groups(deps: Deps, session: PageSession) -> list[tuple[str, str, list[GroupNode]]]:
    """Every group the staff member owns or reaches, by kind, each kind as a tree."""
    found = await asyncio.gather(*(
        api(deps, session, "groups", "GET", "/v1/groups",
            params={"kind": kind, "limit": GROUPS_LISTED}) for kind, _ in KINDS))
    return [(kind, label, group_tree(page["items"]))
            for (kind, label), page in zip(KINDS, found, strict=True)]


async def personal_groups(deps: Deps, session: PageSession) -> list[dict[str, Any]]:
    found = await api(deps, session, "groups", "GET", "/v1/groups",
                      params={"kind": "personal", "limit": GROUPS_LISTED})
    return list(found["items"])


async def create_group(deps: Deps, session: PageSession, name: str,
                       parent_id: uuid.UUID | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name.strip()}
    if parent_id is not None:
        body["parent_id"] = str(parent_id)
    created: dict[str, Any] = await api(deps, session, "groups", "POST", "/v1/groups",
                                        json=body)
    return created


async def group(deps: Deps, session: PageSession, group_id: uuid.UUID) -> dict[str, Any]:
    found: dict[str, Any] = await api(deps, session, "groups", "GET", f"/v1/groups/{group_id}")
    return found


async def subgroups(deps: Deps, session: PageSession, g: dict[str, Any]
                    ) -> list[dict[str, Any]]:
    found = await api(deps, session, "groups", "GET", "/v1/groups",
                      params={"kind": g["kind"], "limit": GROUPS_LISTED})
    return children_of(found["items"], g["id"])


async def parent(deps: Deps, session: PageSession, g: dict[str, Any]) -> dict[str, Any] | None:
    if not g.get("parent_id"):
        return None
    try:
        return await group(deps, session, g["parent_id"])
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


async def _page(deps: Deps, session: PageSession, service: str, path: str, *,
                cursor: str | None, limit: int, **filters: str | None) -> dict[str, Any]:
    """One page of a service's list: the filters that are set, the cursor, the limit."""
    params: dict[str, Any] = {"limit": limit, **{k: v for k, v in filters.items() if v}}
    if cursor:
        params["cursor"] = cursor
    found: dict[str, Any] = await api(deps, session, service, "GET", path, params=params)
    return found


async def members(deps: Deps, session: PageSession, group_id: uuid.UUID, *, q: str,
                  source: str, cursor: str | None, limit: int = 25) -> dict[str, Any]:
    return await _page(deps, session, "groups", f"/v1/groups/{group_id}/members",
                       cursor=cursor, limit=limit, q=q,
                       source=source if source in SOURCES else None)


async def invitations(deps: Deps, session: PageSession, group_id: uuid.UUID, *,
                      status: str, cursor: str | None, limit: int = 25) -> dict[str, Any]:
    return await _page(deps, session, "groups", f"/v1/groups/{group_id}/invitations",
                       cursor=cursor, limit=limit,
                       status=status if status in INVITATION_STATUSES else None)


async def invite(deps: Deps, session: PageSession, group_id: uuid.UUID, emails: list[str],
                 customer_ids: list[str]) -> list[dict[str, Any]]:
    found = await api(deps, session, "groups", "POST", f"/v1/groups/{group_id}/invitations",
                      json={"emails": emails, "customer_ids": customer_ids})
    return list(found["items"])


async def invitation_action(deps: Deps, session: PageSession, invitation_id: uuid.UUID,
                            action: str) -> None:
    assert action in ("resend", "revoke")
    await api(deps, session, "groups", "POST", f"/v1/invitations/{invitation_id}/{action}")


async def rotate_passcode(deps: Deps, session: PageSession, group_id: uuid.UUID) -> str:
    found = await api(deps, session, "groups", "POST", f"/v1/groups/{group_id}/passcode")
    return str(found["passcode"])


async def switch_off_passcode(deps: Deps, session: PageSession, group_id: uuid.UUID) -> None:
    await api(deps, session, "groups", "DELETE", f"/v1/groups/{group_id}/passcode")


async def send_message(pool: asyncpg.Pool, deps: Deps, session: PageSession,
                       group_id: uuid.UUID, *, subject: str, body: str,
                       include_subgroups: bool) -> dict[str, Any]:
    """groups fixes the recipients and answers 202; the page remembers the message id."""
    sent: dict[str, Any] = await api(
        deps, session, "groups", "POST", f"/v1/groups/{group_id}/messages",
        json={"subject": subject.strip(), "body": body, "include_subgroups": include_subgroups})
    async with transaction(pool) as conn:
        await repo.add_group_message(
            conn, message_id=uuid.UUID(str(sent["message_id"])), group_id=group_id,
            staff_id=session.account_id, subject=subject.strip(),
            recipients=int(sent["recipients"]), sent_at=deps.clock.now())
    return sent


async def remind(pool: asyncpg.Pool, deps: Deps, session: PageSession, group_id: uuid.UUID,
                 code: str, *, subject: str, body: str, params: dict[str, Any]
                 ) -> dict[str, Any]:
    """readiness' reminder to everyone in the group who has not completed ``code``; it
    answers groups' 202 (the message id), which the page remembers like its own."""
    sent: dict[str, Any] = await api(
        deps, session, "readiness", "POST",
        f"/v1/groups/{group_id}/assessment-dashboard/reminders", params=params,
        json={"assessment_code": code, "subject": subject.strip(), "body": body})
    async with transaction(pool) as conn:
        await repo.add_group_message(
            conn, message_id=uuid.UUID(str(sent["message_id"])), group_id=group_id,
            staff_id=session.account_id, subject=subject.strip(),
            recipients=int(sent["recipients"]), sent_at=deps.clock.now())
    return sent


async def sent_messages(pool: asyncpg.Pool, session: PageSession, group_id: uuid.UUID,
                        limit: int = 20) -> list[dict[str, Any]]:
    """The messages to the group whose status this staff member may see (notify shows a
    message's status to its sender and to administrators)."""
    async with pool.acquire() as conn:
        rows = await repo.group_messages(conn, group_id,
                                         None if session.is_admin else session.account_id,
                                         limit)
    return [dict(r) for r in rows]


async def sent_message(pool: asyncpg.Pool, message_id: uuid.UUID) -> dict[str, Any] | None:
    async with pool.acquire() as conn:
        row = await repo.group_message(conn, message_id)
    return dict(row) if row else None


async def message_status(deps: Deps, session: PageSession, message_id: uuid.UUID
                         ) -> dict[str, Any]:
    found: dict[str, Any] = await api(deps, session, "notify", "GET",
                                      f"/v1/messages/{message_id}")
    return found


async def deliveries(deps: Deps, session: PageSession, message_id: uuid.UUID, *,
                     status: str, cursor: str | None, limit: int = 50) -> dict[str, Any]:
    return await _page(deps, session, "notify", f"/v1/messages/{message_id}/deliveries",
                       cursor=cursor, limit=limit,
                       status=status if status in DELIVERY_STATUSES else None)


async def resend_failed(deps: Deps, session: PageSession, message_id: uuid.UUID) -> int:
    found = await api(deps, session, "notify", "POST",
                      f"/v1/messages/{message_id}/resend-failed")
    return int(found["requeued"])


async def member_names(deps: Deps, session: PageSession, group_id: uuid.UUID
                       ) -> dict[str, str]:
    """customer id -> name for the group's first members (to name a message's recipients)."""
    found = await members(deps, session, group_id, q="", source="", cursor=None, limit=100)
    return {str(m["customer_id"]): " ".join(p for p in (m.get("first_name"),
                                                        m.get("last_name")) if p)
            for m in found["items"]}


async def dashboard(deps: Deps, session: PageSession, group_id: uuid.UUID, *,
                    start: date | None, end: date | None, include_subgroups: bool
                    ) -> dict[str, Any]:
    found: dict[str, Any] = await api(
        deps, session, "readiness", "GET", f"/v1/groups/{group_id}/assessment-dashboard",
        params=dashboard_params(start, end, include_subgroups))
    return found


def dashboard_params(start: date | None, end: date | None, include_subgroups: bool
                     ) -> dict[str, Any]:
    params: dict[str, Any] = {"include_subgroups": "true" if include_subgroups else "false"}
    if start:
        params["from"] = start.isoformat()
    if end:
        params["to"] = end.isoformat()
    return params


async def dashboard_people(deps: Deps, session: PageSession, group_id: uuid.UUID, code: str,
                           *, params: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = await api(
        deps, session, "readiness", "GET",
        f"/v1/groups/{group_id}/assessment-dashboard/{code}", params=params)
    return found


async def dashboard_csv(deps: Deps, session: PageSession, group_id: uuid.UUID, code: str,
                        *, params: dict[str, Any]) -> httpx.Response:
    r = await call(deps, "readiness", "GET",
                   f"/v1/groups/{group_id}/assessment-dashboard/{code}",
                   token=session.access_token, params={**params, "format": "csv"})
    if r.status_code >= 400:
        raise _problem(r)
    return r


async def catalogue(deps: Deps, session: PageSession) -> dict[str, Any]:
    found: dict[str, Any] = await api(deps, session, "readiness", "GET", "/v1/catalogue")
    return found


# -- a customer, for staff ---------------------------------------------------------------

async def customer_extras(deps: Deps, session: PageSession, customer_id: Any
                          ) -> dict[str, Any]:
    """The customer's groups, why this staff member sees them, their readiness, and the
    staff member's personal groups to invite them to; a part that cannot be had (its
    service down) is None and the page says so instead of failing whole."""
    from gateway.service import Unavailable

    async def safe(coro: Any) -> Any:
        try:
            return await coro
        except Unavailable:
            return None
        except ApiError as exc:
            if exc.status in (403, 404):
                return {"items": [], "via": []} if exc.status == 404 else None
            raise

    groups, access, readiness, mine = await asyncio.gather(
        safe(api(deps, session, "groups", "GET", f"/v1/customers/{customer_id}/groups")),
        safe(api(deps, session, "groups", "GET", f"/v1/access/customers/{customer_id}")),
        safe(api(deps, session, "readiness", "GET", f"/v1/customers/{customer_id}/readiness")),
        safe(personal_groups(deps, session)))
    if isinstance(readiness, dict) and "assessments" not in readiness:
        readiness = None
    return {"customer_groups": groups["items"] if groups else None,
            "access_via": access["via"] if access else None,
            "readiness": readiness,
            "my_personal_groups": [g for g in (mine or []) if not g.get("parent_id")]
            if isinstance(mine, list) else [],
            "customer_id": str(customer_id), "kind_names": KIND_NAMES, "sources": SOURCES}
