"""Use cases on a program's participants: a case worker's invitation, the customer's
application, staff moving a participant through the statuses, and the views.

Each changes state, history, audit rows and its event in one transaction.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from enrollment.domain.programs import (
    DEFAULT_LIMIT,
    RETURNING_CITIZENS,
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    check_application,
    check_application_shape,
    check_status_body,
)
from enrollment.domain.records import Application, Enrollment, HistoryEntry
from enrollment.repository import enrollments as enr
from enrollment.repository import programs as repo
from enrollment.repository import returning_citizens as rc_repo
from enrollment.service.common import (
    Actor,
    Page,
    page_of,
    require_program_access,
)
from shared.schemas.enrollment import (
    CustomerEnrolled,
    CustomerExited,
    EnrollmentUpdated,
    Identifier,
    ProgramApplicationSubmitted,
)
from shared.servicekit import audit
from shared.servicekit.db import Connection
from shared.servicekit.paging import cursor_key

if TYPE_CHECKING:
    from enrollment.deps import Deps


async def invite(
    conn: Connection, deps: Deps, program: str, customer_id: uuid.UUID, actor: Actor,
    reason: str | None = None,
) -> Enrollment:
    """A case worker adds a customer, who may then complete the application."""
    today = deps.clock.today()
    await require_program_access(conn, program, actor)
    if program == RETURNING_CITIZENS:
        raise Conflict(None, "Returning Citizens are added with Add Customer",
                       code="use-add-customer")
    if await repo.customer_username(conn, customer_id) is None:
        raise NotFound("no such customer")
    await enr.lock_participation(conn, program, customer_id)
    existing = await enr.open_enrollment(conn, program, customer_id)
    if existing is not None:
        raise Conflict(None, f"the customer already has enrollment {existing.id} in this program",
                       code="already-participating", enrollment_id=str(existing.id))
    enrollment_id = uuid.uuid4()
    await enr.insert_enrollment(conn, id=enrollment_id, program=program,
                                customer_id=customer_id, status="invited", on=today,
                                reason=reason, added_by=actor.id, enrolled_on=None)
    await enr.add_history(conn, enrollment_id, actor_id=actor.id, action="invited",
                          changes={"status": {"from": None, "to": "invited"}})
    await audit.record(
        conn, audit.Actor(actor.id, "staff"), "enrollment.invite", customer_id,
        enrollment_id=enrollment_id)
    await deps.outbox.add(conn, EnrollmentUpdated(
        enrollment_id=enrollment_id, program=program, customer_id=customer_id,
        staff_id=actor.id, updated_by=actor.id, status="invited", status_on=today))
    found = await enr.get_enrollment(conn, enrollment_id)
    assert found is not None
    return found


async def apply(
    conn: Connection, deps: Deps, program_code: str, actor: Actor, raw: Any
) -> tuple[uuid.UUID, Enrollment]:
    """The customer's application (its body, ``ApplicationBody``): completes an
    invitation, or (open programs) starts one."""
    today = deps.clock.today()
    check_application_shape(raw)
    program = await repo.get_program(conn, program_code)
    if program is None:
        raise NotFound("no such program")
    clean = check_application(program.questions, raw, today=today)
    await enr.lock_participation(conn, program.code, actor.id)
    existing = await enr.open_enrollment(conn, program.code, actor.id)
    if existing is not None and existing.status != "invited":
        raise Conflict(None, f"you already have enrollment {existing.id} in this program",
                       code="already-participating", enrollment_id=str(existing.id))
    if existing is None and not program.open_for_applications:
        raise Conflict(None, "this program does not take applications", code="closed")
    if existing is None:
        enrollment_id = uuid.uuid4()
        await enr.insert_enrollment(conn, id=enrollment_id, program=program.code,
                                    customer_id=actor.id, status="applied", on=today,
                                    reason=None, added_by=None, enrolled_on=None)
    else:
        enrollment_id = existing.id
        await enr.set_status(conn, enrollment_id, status="applied", on=today, reason=None)
    application_id = uuid.uuid4()
    await enr.insert_application(conn, id=application_id, program=program.code,
                                 customer_id=actor.id, enrollment_id=enrollment_id,
                                 questions_version=program.questions_version, answers=clean)
    await enr.add_history(conn, enrollment_id, actor_id=actor.id, action="applied", changes={
        "status": {"from": existing.status if existing else None, "to": "applied"},
        "application_id": str(application_id)})
    await audit.record(
        conn, audit.Actor(actor.id, "customer"), "application.submit", actor.id,
        enrollment_id=enrollment_id)
    await deps.outbox.add(conn, ProgramApplicationSubmitted(
        application_id=application_id, program=program.code, customer_id=actor.id,
        enrollment_id=enrollment_id))
    found = await enr.get_enrollment(conn, enrollment_id)
    assert found is not None
    return application_id, found


async def change_status(
    conn: Connection, deps: Deps, program: str, enrollment_id: uuid.UUID,
    raw: dict[str, Any], actor: Actor,
) -> Enrollment:
    """Staff enroll or exit a participant, with a reason and a date."""
    await require_program_access(conn, program, actor)
    current = await enr.get_enrollment(conn, enrollment_id, program=program, for_update=True)
    if current is None:
        raise NotFound("no such enrollment")
    change = check_status_body(
        current.status, raw, today=deps.clock.today(), enrolled_on=current.enrolled_on,
        status_on=current.status_on)
    await enr.set_status(conn, enrollment_id, status=change.status, on=change.on,
                         reason=change.reason, note=change.note)
    await enr.add_history(conn, enrollment_id, actor_id=actor.id, action=change.status,
                          changes={"status": {"from": current.status, "to": change.status},
                                   "on": change.on.isoformat(), "reason": change.reason})
    await audit.record(
        conn, audit.Actor(actor.id, "staff"), f"enrollment.{change.status}", current.customer_id,
        enrollment_id=enrollment_id)
    if change.status == "exited":
        await rc_repo.close(conn, enrollment_id)
        await deps.outbox.add(conn, CustomerExited(
            enrollment_id=enrollment_id, program=program, customer_id=current.customer_id,
            exited_on=change.on, reason=change.reason, note=change.note,
            by=actor.id))
    else:
        await deps.outbox.add(conn, await enrolled_event(conn, current, change.on, actor.id))
    found = await enr.get_enrollment(conn, enrollment_id)
    assert found is not None
    return found


async def enrolled_event(
    conn: Connection, e: Enrollment, on: date, staff_id: uuid.UUID
) -> CustomerEnrolled:
    """CustomerEnrolled for an enrollment, with the Returning Citizens facts when it has them
    (never its offenses)."""
    rc = await rc_repo.get(conn, e.id)
    if rc is None:
        return CustomerEnrolled(enrollment_id=e.id, program=e.program,
                                customer_id=e.customer_id, staff_id=staff_id, enrolled_on=on)
    return CustomerEnrolled(
        enrollment_id=e.id, program=e.program, customer_id=e.customer_id, staff_id=staff_id,
        enrolled_on=on, identifiers=[Identifier(kind="idoc_number", value=rc.idoc_number)],
        institution=rc.institution, counties=list(rc.counties), msr_date=rc.msr_date,
        msr_county=rc.msr_county)


async def list_participants(
    conn: Connection, program: str, actor: Actor, *, status: str | None,
    cursor: str | None, limit: int = DEFAULT_LIMIT,
) -> Page:
    after = _time_cursor(cursor)
    await require_program_access(conn, program, actor)
    rows = await enr.list_enrollments(conn, program, status=status, after=after,
                                      limit=limit + 1)
    page = page_of(rows, limit, lambda e: [e.created_at.isoformat(), str(e.id)])
    await audit.record(
        conn, audit.Actor(actor.id, "staff"), "enrollment.list", None,
        { "program": program, "enrollment_ids": [str(e.id) for e in page.items]})
    return page


async def get_participant(
    conn: Connection, program: str, enrollment_id: uuid.UUID, actor: Actor
) -> tuple[Enrollment, list[Application], list[HistoryEntry]]:
    await require_program_access(conn, program, actor)
    found = await enr.get_enrollment(conn, enrollment_id, program=program)
    if found is None:
        raise NotFound("no such enrollment")
    if found.program == RETURNING_CITIZENS:
        # its history holds offense codes: the record route's rule, audited first
        await audit.record(
            conn, audit.Actor(actor.id, "staff"), "returning_citizen.view", found.customer_id,
            {"offenses_shown": True, "route": "participants"}, enrollment_id=enrollment_id)
    else:
        await audit.record(
            conn, audit.Actor(actor.id, "staff"), "enrollment.view", found.customer_id,
            enrollment_id=enrollment_id)
    applications = await enr.applications_for(conn, enrollment_id)
    history = await enr.history(conn, enrollment_id)
    return found, applications, history


async def my_enrollments(conn: Connection, actor: Actor, cursor: str | None, limit: int
                         ) -> Page:
    after = _time_cursor(cursor)
    rows = await enr.customer_enrollments(conn, actor.id, after, limit + 1)
    return page_of(rows, limit, lambda e: [e.created_at.isoformat(), str(e.id)])


def _time_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not cursor:
        return None
    key = cursor_key(cursor, 2)
    try:
        return datetime.fromisoformat(str(key[0])), uuid.UUID(str(key[1]))
    except ValueError:
        raise InvalidInput([FieldError("cursor", "is not a cursor from this list")]) from None
