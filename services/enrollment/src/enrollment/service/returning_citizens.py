"""The Returning Citizen customer list, the record, its changes, and the hand-out.

Only staff authorized for the program see any of it (to anyone else it is not
there). Every read is audited in the transaction that reads; a view that shows
offenses is audited before the data leaves.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from enrollment.domain import handout as handout_page
from enrollment.domain.corrections import Facts, check_patch
from enrollment.domain.programs import (
    DEFAULT_LIMIT,
    STATUSES,
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    parse_date,
)
from enrollment.domain.programs import RETURNING_CITIZENS as RC
from enrollment.domain.records import HistoryEntry, ReturningCitizen
from enrollment.domain.returning_citizens import normalize_idoc
from enrollment.repository import enrollments as enr
from enrollment.repository import programs as repo
from enrollment.repository import returning_citizens as rc_repo
from enrollment.service.common import Actor, Page, known_codes, require_program_access
from shared.schemas.enrollment import EnrollmentUpdated, Identifier
from shared.servicekit import audit
from shared.servicekit.db import Connection
from shared.servicekit.paging import cursor_key, encode_cursor

if TYPE_CHECKING:
    from enrollment.deps import Deps

LIST_FILTERS = ("institution", "msr_county", "msr_from", "msr_to", "enrolled_from",
                "enrolled_to", "q", "status", "sort")
Q_MAX = 100
_LIKE_SPECIAL = re.compile(r"([\\%_])")


def parse_filters(params: dict[str, str | None]) -> tuple[rc_repo.ListFilter, str, bool]:
    """The list's query parameters: the filter, the sort and its direction."""
    errors: list[FieldError] = []
    dates = {name: parse_date(params.get(name), name, errors, required=False)
             for name in ("msr_from", "msr_to", "enrolled_from", "enrolled_to")}
    for low, high in (("msr_from", "msr_to"), ("enrolled_from", "enrolled_to")):
        lo, hi = dates[low], dates[high]
        if lo is not None and hi is not None and lo > hi:
            errors.append(FieldError(high, f"must not be before {low}"))
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        errors.append(FieldError("status", f"must be one of {', '.join(STATUSES)}"))
    sort = params.get("sort") or "last_name"
    descending = sort.startswith("-")
    if sort.lstrip("-") not in rc_repo.SORTS:
        errors.append(FieldError(
            "sort", f"must be one of {', '.join(rc_repo.SORTS)}, with - for descending"))
    q = (params.get("q") or "").strip()
    idoc = name = None
    if len(q) > Q_MAX:
        errors.append(FieldError("q", f"must be at most {Q_MAX} characters"))
    elif q:
        try:
            idoc = normalize_idoc(q)
        except ValueError:
            name = _LIKE_SPECIAL.sub(r"\\\1", " ".join(q.lower().split())) + "%"
    if errors:
        raise InvalidInput(errors)
    return rc_repo.ListFilter(
        institution=params.get("institution") or None,
        msr_county=params.get("msr_county") or None,
        msr_from=dates["msr_from"], msr_to=dates["msr_to"],
        enrolled_from=dates["enrolled_from"], enrolled_to=dates["enrolled_to"],
        idoc_number=idoc, name_prefix=name, status=status,
    ), sort.lstrip("-"), descending


async def list_citizens(
    conn: Connection, actor: Actor, params: dict[str, str | None], cursor: str | None,
    limit: int = DEFAULT_LIMIT,
) -> Page:
    await require_program_access(conn, RC, actor)
    filters, sort, descending = parse_filters(params)
    spec = f"-{sort}" if descending else sort
    after = None
    if cursor:
        key = cursor_key(cursor, 1 + len(rc_repo.SORTS[sort]))
        try:
            if key[0] != spec:
                raise ValueError("another sort")
            after = rc_repo.parse_key(sort, key[1:])
        except ValueError:
            raise InvalidInput([FieldError(
                "cursor", "is not a cursor from this list and sort")]) from None
    rows = await rc_repo.list_page(conn, filters, sort=sort, descending=descending,
                                   after=after, limit=limit + 1)
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit and items:
        next_cursor = encode_cursor(spec, *rc_repo.sort_key(items[-1], sort))
    await audit.record(
        conn, audit.Actor(actor.id, "staff"), "returning_citizen.list", None,
        {"enrollment_ids": [str(r.enrollment_id) for r in items]})
    return Page(items, next_cursor)


@dataclass(frozen=True)
class Record:
    rc: ReturningCitizen
    offenses: tuple[str, ...]
    history: list[HistoryEntry]
    names: dict[str, str]  # "kind:code" -> name


async def _record(conn: Any, actor: Actor, enrollment_id: uuid.UUID, action: str) -> Record:
    """The record with its offenses; the view is audited in this transaction, first."""
    rc = await rc_repo.get(conn, enrollment_id)
    if rc is None:
        raise NotFound("no such Returning Citizens enrollment")
    await audit.record(
        conn, audit.Actor(actor.id, "staff"), action, rc.customer_id, {"offenses_shown": True},
        enrollment_id=enrollment_id)
    offenses = await rc_repo.offenses(conn, enrollment_id)
    history = await enr.history(conn, enrollment_id)
    pairs = [("institutions", rc.institution), *(("counties", c) for c in rc.counties),
             *(("offenses", o) for o in offenses)]
    if rc.msr_county:
        pairs.append(("counties", rc.msr_county))
    return Record(rc, offenses, history, await repo.reference_names(conn, pairs))


async def view(conn: Connection, actor: Actor, enrollment_id: uuid.UUID) -> Record:
    await require_program_access(conn, RC, actor)
    return await _record(conn, actor, enrollment_id, "returning_citizen.view")


# form field name -> (the Facts attribute, how it goes into the history)
_HISTORY_NAMES = {
    "institution": "parent_institution", "idoc_number": "idoc_number",
    "counties": "counties_of_commitment", "msr_date": "msr_date", "msr_county": "msr_county",
    "offenses": "offenses", "enrollment_date": "enrollment_date",
}


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


async def patch(
    conn: Connection, deps: Deps, actor: Actor, enrollment_id: uuid.UUID,
    raw: dict[str, Any],
) -> Record:
    """Change the enrollment's facts; who changed what is kept in its history."""
    await require_program_access(conn, RC, actor)
    rc = await rc_repo.get(conn, enrollment_id, for_update=True)
    if rc is None:
        raise NotFound("no such Returning Citizens enrollment")
    current = Facts(rc.institution, rc.idoc_number, rc.counties, rc.msr_date,
                    rc.msr_county, await rc_repo.offenses(conn, enrollment_id),
                    rc.enrollment_date)
    changes = check_patch(raw, current, today=deps.clock.today(),
                          known=await known_codes(conn, raw),
                          date_of_birth=rc.date_of_birth)
    if "idoc_number" in changes and rc.status != "exited":
        owner = await rc_repo.open_idoc_owner(conn, changes["idoc_number"])
        if owner is not None and owner != enrollment_id:
            raise Conflict(None, f"IDOC number {changes['idoc_number']} already has open "
                           f"Returning Citizens enrollment {owner}", code="idoc-number-enrolled",
                           existing_enrollment_id=str(owner))
    if changes:
        await rc_repo.update(conn, enrollment_id, changes)
        if "offenses" in changes:
            await rc_repo.set_offenses(conn, enrollment_id, changes["offenses"])
        if "enrollment_date" in changes:
            await enr.set_enrolled_on(conn, enrollment_id, changes["enrollment_date"])
        await enr.add_history(conn, enrollment_id, actor_id=actor.id, action="updated",
                              changes={_HISTORY_NAMES[k]: {
                                  "from": _plain(getattr(current, k)), "to": _plain(v)}
                                  for k, v in changes.items()})
        await audit.record(
            conn, audit.Actor(actor.id, "staff"), "returning_citizen.update", rc.customer_id,
            {"fields": sorted(_HISTORY_NAMES[k] for k in changes)}, enrollment_id=enrollment_id)
        event = _updated_event(rc, changes, actor.id)
        if event is not None:
            await deps.outbox.add(conn, event)
    return await _record(conn, actor, enrollment_id, "returning_citizen.view")


def _updated_event(
    rc: ReturningCitizen, changes: dict[str, Any], staff_id: uuid.UUID
) -> EnrollmentUpdated | None:
    """What changed, for other services; offenses are never in it."""
    facts = {k: v for k, v in changes.items() if k != "offenses"}
    if not facts:
        return None
    return EnrollmentUpdated(
        enrollment_id=rc.enrollment_id, program=RC, customer_id=rc.customer_id,
        enrolled_on=facts.get("enrollment_date"),
        identifiers=[Identifier(kind="idoc_number", value=facts["idoc_number"])]
        if "idoc_number" in facts else None,
        institution=facts.get("institution"),
        counties=list(facts["counties"]) if "counties" in facts else None,
        msr_date=facts.get("msr_date"), msr_county=facts.get("msr_county"),
        cleared=["msr_county"] if "msr_county" in facts and facts["msr_county"] is None else [],
        updated_by=staff_id,
    )


async def handout(
    conn: Connection, deps: Deps, actor: Actor, enrollment_id: uuid.UUID, *,
    temporary_password: str | None, password_expires_at: str | None,
) -> str:
    """The printable hand-out for the customer (the password only if the caller has it)."""
    await require_program_access(conn, RC, actor)
    rc = await rc_repo.get(conn, enrollment_id)
    if rc is None:
        raise NotFound("no such Returning Citizens enrollment")
    names = await repo.reference_names(conn, [("institutions", rc.institution)])
    await audit.record(
        conn, audit.Actor(actor.id, "staff"), "returning_citizen.handout", rc.customer_id,
        enrollment_id=enrollment_id)
    return handout_page.render(
        first_name=rc.first_name, last_name=rc.last_name, username=rc.username,
        temporary_password=temporary_password, password_expires_at=password_expires_at,
        signin_url=deps.signin_url,
        institution=names.get(f"institutions:{rc.institution}", rc.institution))
