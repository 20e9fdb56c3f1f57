"""Use cases on programs, reference data and staff authorization. One function per
command, run in the caller's transaction; errors are ``DomainError`` subclasses that
the api layer answers as problems. What every use case shares is in ``service.common``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from enrollment.domain.programs import (
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    ReferenceKind,
    check_program_body,
    check_reference_body,
)
from enrollment.domain.records import Authorization, Program
from enrollment.domain.records import ReferenceEntry as Entry
from enrollment.repository import programs as repo
from enrollment.service.common import Actor, Page, page_of
from shared.schemas.enrollment import ProgramStaffAuthorized, ProgramStaffRevoked
from shared.servicekit import audit
from shared.servicekit.db import Connection
from shared.servicekit.paging import cursor_key

if TYPE_CHECKING:
    from enrollment.deps import Deps

# -- programs ---------------------------------------------------------------------------------


async def list_programs(conn: Connection, cursor: str | None, limit: int) -> Page:
    after = str(cursor_key(cursor, 1)[0]) if cursor else None
    rows = await repo.list_programs(conn, after, limit + 1)
    return page_of(rows, limit, lambda p: [p.code])


async def get_program(conn: Connection, code: str) -> Program:
    program = await repo.get_program(conn, code)
    if program is None:
        raise NotFound("no such program")
    return program


async def put_program(
    conn: Connection, code: str, raw: dict[str, Any], actor: Actor
) -> tuple[Program, bool]:
    """Create or change a program; changed questions become the next version."""
    change = check_program_body(code, raw)
    current = await repo.lock_program(conn, code)
    if current is None:
        await repo.insert_program(conn, code, change.name, change.description,
                                  change.open_for_applications, change.questions or (),
                                  actor.id)
    else:
        questions = change.questions
        if questions is not None and questions == current.questions:
            questions = None  # the same list again is no new version
        await repo.update_program(conn, code, change.name, change.description,
                                  change.open_for_applications, questions, actor.id)
    await audit.record(
        conn, audit.Actor(actor.id, "staff"),
        "program.create" if current is None else "program.update", None, {"program": code})
    program = await repo.get_program(conn, code)
    assert program is not None
    return program, current is None


# -- reference data -----------------------------------------------------------------------------


async def list_reference(
    conn: Connection, kind: ReferenceKind, *, include_retired: bool, cursor: str | None,
    limit: int,
) -> Page:
    after = None
    if cursor:
        key = cursor_key(cursor, 2)
        after = (str(key[0]), str(key[1]))
    rows = await repo.list_reference(conn, kind, include_retired=include_retired,
                                     after=after, limit=limit + 1)
    return page_of(rows, limit, lambda e: [e.name.lower(), e.code])


async def put_reference(
    conn: Connection, kind: ReferenceKind, code: str, raw: dict[str, Any], actor: Actor
) -> tuple[Entry, bool]:
    change = check_reference_body(code, raw)
    before = await repo.get_reference(conn, kind, code)
    await repo.put_reference(conn, kind, code, change.name, change.retired, actor.id)
    await audit.record(
        conn, audit.Actor(actor.id, "staff"), "reference.put", None,
        {"kind": kind, "code": code, "name": change.name, "retired": change.retired,
         "before": {"name": before.name, "retired": before.retired} if before else None})
    entry = await repo.get_reference(conn, kind, code)
    assert entry is not None
    return entry, before is None


# -- staff authorization -----------------------------------------------------------------------


async def authorize_staff(
    conn: Connection, deps: Deps, program: str, staff_id: uuid.UUID, actor: Actor
) -> bool:
    """Grant; True when new (then ProgramStaffAuthorized). The staff member must be known
    from identity's events and active."""
    if await repo.get_program(conn, program) is None:
        raise NotFound("no such program")
    staff = await repo.get_staff(conn, staff_id)
    if staff is None:
        raise NotFound("no such staff member")
    if staff.status != "active":
        raise Conflict(None, "the staff member's account is not active", code="staff-not-active")
    created = await repo.grant(conn, program, staff_id, actor.id)
    if created:
        await audit.record(
            conn, audit.Actor(actor.id, "staff"), "program.staff_authorized", None,
            {"program": program, "staff_id": str(staff_id)})
        await deps.outbox.add(conn, ProgramStaffAuthorized(
            program=program, staff_id=staff_id, by=actor.id))
    return created


async def revoke_staff(
    conn: Connection, deps: Deps, program: str, staff_id: uuid.UUID, actor: Actor
) -> None:
    if await repo.get_program(conn, program) is None:
        raise NotFound("no such program")
    if await repo.revoke(conn, program, staff_id):
        await audit.record(
            conn, audit.Actor(actor.id, "staff"), "program.staff_revoked", None,
            {"program": program, "staff_id": str(staff_id)})
        await deps.outbox.add(conn, ProgramStaffRevoked(
            program=program, staff_id=staff_id, by=actor.id))


async def list_program_staff(
    conn: Connection, program: str, cursor: str | None, limit: int
) -> Page:
    after = None
    if cursor:
        try:
            after = uuid.UUID(str(cursor_key(cursor, 1)[0]))
        except ValueError:
            raise InvalidInput([FieldError("cursor", "is not a cursor from this list")]) from None
    if await repo.get_program(conn, program) is None:
        raise NotFound("no such program")
    rows: list[Authorization] = await repo.list_authorizations(conn, program, after,
                                                                limit + 1)
    return page_of(rows, limit, lambda a: [str(a.staff_id)])
