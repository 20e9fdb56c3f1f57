"""audit.record: one append-only row per action, the request id taken from the log
context, details as JSON, a service's extra columns, and no update or delete.

Each test runs in a transaction that is rolled back (the ``conn`` fixture); a
transaction the code under test opens is a savepoint inside it."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from shared.servicekit import audit
from shared.servicekit.logs import correlation_id


async def test_record_takes_the_request_id_from_the_context(conn: asyncpg.Connection) -> None:
    staff, subject = uuid.uuid4(), uuid.uuid4()
    token = correlation_id.set("req-audit-1")
    try:
        async with conn.transaction():
            await audit.record(conn, audit.Actor(staff, "staff"), "customer.view", subject,
                               {"fields": ["ssn_last4"]})
    finally:
        correlation_id.reset(token)
    await audit.record(conn, audit.Actor.system(), "customer.import")
    rows = await conn.fetch(
        "SELECT actor_id, actor_kind, action, subject_id, request_id, details::text AS d"
        " FROM audit_log ORDER BY id")
    assert [(r["actor_id"], r["actor_kind"], r["action"], r["subject_id"], r["request_id"])
            for r in rows] == [
        (staff, "staff", "customer.view", subject, "req-audit-1"),
        (None, "system", "customer.import", None, None)]
    assert rows[0]["d"] == '{"fields": ["ssn_last4"]}'  # an object, not a JSON string
    assert rows[1]["d"] == "{}"


async def test_a_rolled_back_action_leaves_no_row(conn: asyncpg.Connection) -> None:
    with pytest.raises(RuntimeError):
        async with conn.transaction():
            await audit.record(conn, audit.Actor.system(), "doomed")
            raise RuntimeError("the action failed")
    assert await conn.fetchval("SELECT count(*) FROM audit_log") == 0


async def test_extra_columns_and_append_only(conn: asyncpg.Connection) -> None:
    await conn.execute("ALTER TABLE audit_log ADD COLUMN enrollment_id uuid")
    enrollment = uuid.uuid4()
    await audit.record(conn, audit.Actor(uuid.uuid4(), "staff"), "enrollment.view",
                       enrollment_id=enrollment)
    with pytest.raises(ValueError):
        await audit.record(conn, audit.Actor.system(), "x", **{"id; drop": None})
    # each refused statement in a savepoint: the test's transaction goes on
    with pytest.raises(asyncpg.RaiseError):
        async with conn.transaction():
            await conn.execute("UPDATE audit_log SET action = 'changed'")
    with pytest.raises(asyncpg.RaiseError):
        async with conn.transaction():
            await conn.execute("DELETE FROM audit_log")
    assert await conn.fetchval("SELECT enrollment_id FROM audit_log") == enrollment
    assert await conn.fetchval("SELECT action FROM audit_log") == "enrollment.view"
