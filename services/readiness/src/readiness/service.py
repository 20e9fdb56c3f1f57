"""readiness's use cases. Each takes the caller's connection (a route's transaction, the
consumer's inbox transaction) and the deps; calls to groups happen outside any
transaction (a person waits on them, and a transaction is never held across one)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import structlog

from readiness import repository as repo
from readiness.deps import Deps
from readiness.domain import STATUSES, Screened, readiness_view, screen, window
from shared.servicekit import audit
from shared.servicekit.audit import Actor
from shared.servicekit.db import Connection
from shared.servicekit.errors import Conflict, FieldError, InvalidInput, NotFound
from shared.servicekit.paging import BadCursor, decode_cursor, encode_cursor

log = structlog.get_logger(__name__)


# -- the one pipeline both ways in use ----------------------------------------------------

@dataclass
class IngestResult:
    received: int = 0
    accepted: int = 0   # new records
    replaced: int = 0   # a known record_id with a later occurred_at
    unchanged: int = 0  # duplicates, and versions older than the one kept
    rejected: int = 0

    def add(self, other: IngestResult) -> None:
        for name in ("received", "accepted", "replaced", "unchanged", "rejected"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


async def ingest(conn: Connection, deps: Deps, items: Sequence[tuple[int | None, Any]],
                 source: str) -> tuple[IngestResult, Screened]:
    """Validate a batch of records, keep the bad ones with their reason, and store the
    rest in one set-based write (idempotent by record_id, latest occurred_at wins)."""
    screened = screen(items, await repo.catalogue_codes(conn))
    await repo.store_rejections(conn, screened.rejected, source)
    inserted, replaced = await repo.store_records(conn, screened.records, source)
    result = IngestResult(
        received=len(items), accepted=inserted, replaced=replaced,
        unchanged=len(items) - len(screened.rejected) - inserted - replaced,
        rejected=len(screened.rejected))
    return result, screened


# -- access -------------------------------------------------------------------------------

async def require_customer_access(deps: Deps, token: str, customer_id: UUID) -> None:
    """404 unless groups says the caller reaches the customer (503 when it cannot say)."""
    if not await deps.access.reaches_customer(token, customer_id):
        raise NotFound("customer not found")


async def require_group_access(deps: Deps, token: str, group_id: UUID) -> None:
    if not await deps.access.reaches_group(token, group_id):
        raise NotFound("group not found")


# -- per customer -------------------------------------------------------------------------

async def readiness_of(conn: Connection, account_id: UUID) -> dict[str, Any]:
    account = await repo.survivor_of(conn, account_id)
    rows = await repo.records_of(conn, account)
    assessments = {a["code"]: a["name"] for a in await repo.catalogue(conn, "assessments")}
    modules = {m["code"]: m["name"] for m in await repo.catalogue(conn, "modules")}
    return readiness_view(rows, assessments, modules)


async def customer_readiness(conn: Connection, deps: Deps, actor: Actor, customer_id: UUID
                             ) -> dict[str, Any]:
    """A staff member's view of a customer's readiness (access already checked), audited."""
    view = await readiness_of(conn, customer_id)
    await audit.record(conn, actor, "readiness.viewed", customer_id, {
        "assessments": len(view["assessments"]),
        "modules": len(view["employment101"]["modules"]),
        "outcomes": len(view["outcomes"])})
    return view


async def rejected(conn: Connection, after: int | None, limit: int) -> list[dict[str, Any]]:
    return await repo.rejected(conn, after, limit)


# -- catalogue ----------------------------------------------------------------------------

async def catalogue(conn: Connection) -> dict[str, list[dict[str, Any]]]:
    return {"assessments": await repo.catalogue(conn, "assessments"),
            "modules": await repo.catalogue(conn, "modules")}


async def put_catalogue_entry(conn: Connection, deps: Deps, actor: Actor, which: str,
                              code: str, name: str, description: str | None,
                              position: int, active: bool) -> bool:
    created = await repo.put_catalogue_entry(conn, which, code, name, description, position,
                                             active)
    await audit.record(conn, actor, f"readiness.catalogue.{which}.put", None,
                       {"code": code, "created": created, "active": active})
    return created


# -- the Assessment Dashboard ----------------------------------------------------------------

@dataclass(frozen=True)
class DashboardQuery:
    group_id: UUID
    include_subgroups: bool
    from_: date | None
    to: date | None


async def dashboard(conn: Connection, deps: Deps, q: DashboardQuery) -> dict[str, Any]:
    w = window(q.from_, q.to, deps.settings.zone)
    members, counts = await repo.dashboard_counts(conn, q.group_id, q.include_subgroups,
                                                  w.start, w.end)
    items = []
    for a in await repo.catalogue(conn, "assessments", active_only=True):
        done = counts.get(a["code"], 0)
        items.append({"code": a["code"], "name": a["name"], "completed": done,
                      "not_completed": members - done})
    return {"group_id": q.group_id, "members": members, "assessments": items}


async def _known_assessment(conn: Connection, code: str) -> None:
    if code not in (await repo.catalogue_codes(conn)).assessments:
        raise NotFound("assessment not in the catalogue")


def _status(status: str | None) -> str | None:
    if status is not None and status not in STATUSES:
        raise InvalidInput([FieldError("status", "must be completed or not_completed")])
    return status


async def dashboard_people(conn: Connection, deps: Deps, q: DashboardQuery, code: str,
                           status: str | None, cursor: str | None, limit: int
                           ) -> tuple[list[dict[str, Any]], str | None]:
    await _known_assessment(conn, code)
    w = window(q.from_, q.to, deps.settings.zone)
    after: UUID | None = None
    if cursor:
        try:
            after = UUID(str(decode_cursor(cursor, 1)[0]))
        except (BadCursor, ValueError):
            raise InvalidInput([FieldError("cursor", "is not a cursor from this list")]
                               ) from None
    rows = await repo.dashboard_people(conn, q.group_id, q.include_subgroups, code, w.start,
                                       w.end, _status(status), after, limit + 1)
    page = [_person(r) for r in rows[:limit]]
    nxt = encode_cursor(str(page[-1]["customer_id"])) if len(rows) > limit else None
    return page, nxt


def _person(r: dict[str, Any]) -> dict[str, Any]:
    return {"customer_id": r["customer_id"], "first_name": r["first_name"],
            "last_name": r["last_name"],
            "status": "completed" if r["completed_at"] is not None else "not_completed",
            "completed_at": r["completed_at"]}


async def dashboard_csv(conn: Connection, deps: Deps, actor: Actor, q: DashboardQuery,
                        code: str, status: str | None) -> str:
    """Every person of the list as CSV (the export is audited: it lists customers)."""
    await _known_assessment(conn, code)
    w = window(q.from_, q.to, deps.settings.zone)
    rows = await repo.dashboard_people(conn, q.group_id, q.include_subgroups, code, w.start,
                                       w.end, _status(status), None, None)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["customer_id", "first_name", "last_name", "assessment_code", "status",
                     "completed_at"])
    for r in rows:
        p = _person(r)
        writer.writerow([p["customer_id"], _cell(p["first_name"]), _cell(p["last_name"]), code,
                         p["status"], "" if p["completed_at"] is None
                         else p["completed_at"].isoformat()])
    await audit.record(conn, actor, "readiness.dashboard_exported", None,
                       {"group_id": q.group_id, "assessment_code": code, "rows": len(rows)})
    return out.getvalue()


def _cell(value: str | None) -> str:
    """A name as a CSV cell a spreadsheet will not run as a formula."""
    if not value:
        return ""
    return "'" + value if value[0] in "=+-@\t\r" else value


async def non_completers(conn: Connection, deps: Deps, q: DashboardQuery, code: str
                         ) -> list[UUID]:
    await _known_assessment(conn, code)
    w = window(q.from_, q.to, deps.settings.zone)
    rows = await repo.dashboard_people(conn, q.group_id, q.include_subgroups, code, w.start,
                                       w.end, "not_completed", None, None)
    if not rows:
        raise Conflict("assessment_code", "every member has completed it",
                       code="nobody-to-remind")
    return [r["customer_id"] for r in rows]


async def send_reminder(deps: Deps, token: str, q: DashboardQuery, customer_ids: list[UUID],
                        subject: str, body: str) -> dict[str, Any]:
    """Through groups' message route, narrowed to ``customer_ids`` (no transaction held)."""
    return await deps.messenger.send_group_message(token, q.group_id, {
        "subject": subject, "body": body, "include_subgroups": q.include_subgroups,
        "customer_ids": [str(c) for c in customer_ids]})


async def record_reminder(conn: Connection, actor: Actor, q: DashboardQuery, code: str,
                          message_id: Any, customer_ids: list[UUID]) -> None:
    await audit.record(conn, actor, "readiness.reminder_sent", None, {
        "group_id": q.group_id, "assessment_code": code, "message_id": message_id,
        "recipients": len(customer_ids)})


# -- from groups' and identity's events ---------------------------------------------------

async def group_created(conn: Connection, group_id: UUID, parent: UUID | None, name: str
                        ) -> None:
    await repo.upsert_group(conn, group_id, parent, name)


async def member_added(conn: Connection, group_id: UUID, customer_id: UUID, at: datetime
                       ) -> None:
    await repo.add_member(conn, group_id, customer_id, at)


async def member_removed(conn: Connection, group_id: UUID, customer_id: UUID) -> None:
    await repo.remove_member(conn, group_id, customer_id)


async def customer_named(conn: Connection, customer_id: UUID, first: str | None,
                         last: str | None) -> None:
    await repo.upsert_customer(conn, customer_id, first, last)


async def accounts_merged(conn: Connection, survivor_id: UUID, merged_id: UUID, by: UUID
                          ) -> list[str]:
    moved = await repo.merge(conn, survivor_id, merged_id)
    await audit.record(conn, Actor(by, "staff"), "readiness.moved_by_merge", survivor_id,
                       {"merged_id": merged_id, "records": len(moved)})
    return moved


async def accounts_unmerged(conn: Connection, survivor_id: UUID, merged_id: UUID, by: UUID
                            ) -> list[str]:
    moved = await repo.unmerge(conn, survivor_id, merged_id)
    await audit.record(conn, Actor(by, "staff"), "readiness.moved_by_unmerge", merged_id,
                       {"survivor_id": survivor_id, "records": len(moved)})
    return moved


def lines(items: Iterable[Any]) -> list[tuple[int | None, Any]]:
    """Records without line numbers (from the topic)."""
    return [(None, item) for item in items]
