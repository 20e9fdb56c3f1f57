"""What enrollment learns from identity's events, through the real relay and broker:
account changes, and merges that move enrollments to the survivor (and back)."""

from __future__ import annotations

import uuid

from shared.schemas.base import Event
from shared.schemas.identity import (
    CustomerAccountsMerged,
    CustomerAccountsUnmerged,
    CustomerAccountUpdated,
)
from shared.servicekit.outbox import Outbox
from tests.integration.enrollment.conftest import Stack
from tests.integration.enrollment.helpers import enroll
from tests.support.kit import wait_until


async def identity_says(stack: Stack, event: Event) -> None:
    """identity publishes an event the way it always does: its outbox, its relay."""
    async with stack.identity_pool.acquire() as conn, conn.transaction():
        await Outbox("identity").add(conn, event)


async def owner_of(stack: Stack, enrollment_id: str) -> str:
    return str(await stack.pool.fetchval("SELECT customer_id FROM enrollments WHERE id = $1",
                                         uuid.UUID(enrollment_id)))


async def test_a_merge_moves_enrollments_to_the_survivor_and_back(stack: Stack) -> None:
    admin = await stack.admin()
    staff = await stack.reentry_worker()
    added = await enroll(stack, staff)
    merged_id, enrollment_id = added["account_id"], added["enrollment_id"]
    survivor_id = str(uuid.uuid4())

    await identity_says(stack, CustomerAccountsMerged(
        survivor_id=uuid.UUID(survivor_id), merged_id=uuid.UUID(merged_id), by=admin.id))

    async def moved_to(account: str) -> bool:
        return await owner_of(stack, enrollment_id) == account

    await wait_until(lambda: moved_to(survivor_id), timeout=20)
    r = await stack.client.get(f"/v1/returning-citizens/{enrollment_id}", headers=staff.headers)
    assert r.json()["customer_id"] == survivor_id
    moved = r.json()["history"][-1]
    assert moved["action"] == "moved"
    assert moved["changes"] == {"customer_id": {"from": merged_id, "to": survivor_id},
                                "why": "accounts merged"}
    merged_into = await stack.pool.fetchval("SELECT merged_into FROM customers WHERE id = $1",
                                            uuid.UUID(merged_id))
    assert str(merged_into) == survivor_id

    await identity_says(stack, CustomerAccountsUnmerged(
        survivor_id=uuid.UUID(survivor_id), merged_id=uuid.UUID(merged_id), by=admin.id))
    await wait_until(lambda: moved_to(merged_id), timeout=20)
    assert await stack.pool.fetchval("SELECT merged_into FROM customers WHERE id = $1",
                                     uuid.UUID(merged_id)) is None
    r = await stack.client.get(f"/v1/returning-citizens/{enrollment_id}", headers=staff.headers)
    assert r.json()["history"][-1]["changes"] == {
        "customer_id": {"from": survivor_id, "to": merged_id}, "why": "accounts unmerged"}
    audit = await stack.pool.fetch(
        "SELECT action, subject_id AS customer_id, details FROM audit_log"
        " WHERE action LIKE 'enrollment.moved%' ORDER BY id")
    assert [a["action"] for a in audit] == ["enrollment.moved_by_merge",
                                            "enrollment.moved_by_unmerge"]
    assert [str(a["customer_id"]) for a in audit] == [survivor_id, merged_id]
    assert audit[0]["details"]["merged_id"] == merged_id
    assert audit[1]["details"]["survivor_id"] == survivor_id
    assert all(a["details"]["enrollment_ids"] == [enrollment_id] for a in audit)


async def test_account_changes_reach_the_list(stack: Stack) -> None:
    staff = await stack.reentry_worker()
    added = await enroll(stack, staff)
    account = uuid.UUID(added["account_id"])

    async def known() -> bool:  # identity's CustomerAccountCreated has arrived
        return await stack.pool.fetchval(
            "SELECT changed_at > '-infinity' FROM customers WHERE id = $1", account) is True

    await wait_until(known, timeout=20)
    await identity_says(stack, CustomerAccountUpdated(account_id=account, username="marcus.o"))

    async def renamed() -> bool:
        return await stack.pool.fetchval(
            "SELECT username FROM customers WHERE id = $1", account) == "marcus.o"

    await wait_until(renamed, timeout=20)
    r = await stack.client.get("/v1/returning-citizens", headers=staff.headers)
    assert r.json()["items"][0]["username"] == "marcus.o"


async def test_a_merge_of_two_people_each_enrolled_moves_both_enrollments(stack: Stack) -> None:
    """Both accounts hold an open enrollment: both move to the survivor (only an IDOC
    number is unique), and the unmerge gives each its own back."""
    admin = await stack.admin()
    staff = await stack.reentry_worker()
    first = await enroll(stack, staff)
    second = await enroll(stack, staff, idoc_number="K54321", idoc_number_confirmation="K54321",
                          first_name="Lena", last_name="Park", ssn=None,
                          date_of_birth="1990-03-03")
    survivor, merged = first["account_id"], second["account_id"]
    assert survivor != merged

    await identity_says(stack, CustomerAccountsMerged(
        survivor_id=uuid.UUID(survivor), merged_id=uuid.UUID(merged), by=admin.id))

    async def owners() -> set[str]:
        return {await owner_of(stack, first["enrollment_id"]),
                await owner_of(stack, second["enrollment_id"])}

    async def both_on_survivor() -> bool:
        return await owners() == {survivor}

    await wait_until(both_on_survivor, timeout=20)
    statuses = await stack.pool.fetch(
        "SELECT status FROM enrollments WHERE customer_id = $1", uuid.UUID(survivor))
    assert [r["status"] for r in statuses] == ["enrolled", "enrolled"]  # both still open

    await identity_says(stack, CustomerAccountsUnmerged(
        survivor_id=uuid.UUID(survivor), merged_id=uuid.UUID(merged), by=admin.id))

    async def each_its_own() -> bool:
        return (await owner_of(stack, first["enrollment_id"]) == survivor
                and await owner_of(stack, second["enrollment_id"]) == merged)

    await wait_until(each_its_own, timeout=20)
