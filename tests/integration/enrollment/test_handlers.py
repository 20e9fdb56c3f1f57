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


async def test_chained_merges_undone_in_either_order_give_each_its_enrollments_back(
        stack: Stack) -> None:
    """A into B, then B into C; the two unmerges may arrive in either order (their events
    are keyed by different survivors): each account ends with its own enrollments."""
    admin = await stack.admin()
    staff = await stack.reentry_worker()

    async def merged_into(account: uuid.UUID) -> uuid.UUID | None:
        value = await stack.pool.fetchval("SELECT merged_into FROM customers WHERE id = $1",
                                          account)
        return value if isinstance(value, uuid.UUID) else None

    async def says(event: Event, account: uuid.UUID, into: uuid.UUID | None) -> None:
        await identity_says(stack, event)

        async def applied() -> bool:
            return await merged_into(account) == into

        await wait_until(applied, timeout=20)

    for order in ("later first", "earlier first"):
        n = 1 if order == "later first" else 2
        a_added = await enroll(stack, staff, idoc_number=f"A1000{n}",
                               idoc_number_confirmation=f"A1000{n}", first_name="Ann",
                               last_name=("Alder", "Birch")[n - 1], ssn=None,
                               date_of_birth=f"196{n}-05-0{n}")
        b_added = await enroll(stack, staff, idoc_number=f"B1000{n}",
                               idoc_number_confirmation=f"B1000{n}", first_name="Ben",
                               last_name=("Cedar", "Dogwood")[n - 1], ssn=None,
                               date_of_birth=f"197{n}-07-0{n}")
        a, b, c = (uuid.UUID(a_added["account_id"]), uuid.UUID(b_added["account_id"]),
                   uuid.uuid4())
        await says(CustomerAccountsMerged(survivor_id=b, merged_id=a, by=admin.id), a, b)
        await says(CustomerAccountsMerged(survivor_id=c, merged_id=b, by=admin.id), b, c)
        assert await owner_of(stack, a_added["enrollment_id"]) == str(c)
        assert await owner_of(stack, b_added["enrollment_id"]) == str(c)
        undo_later = (CustomerAccountsUnmerged(survivor_id=c, merged_id=b, by=admin.id), b)
        undo_earlier = (CustomerAccountsUnmerged(survivor_id=b, merged_id=a, by=admin.id), a)
        for event, account in ((undo_later, undo_earlier) if order == "later first"
                               else (undo_earlier, undo_later)):
            await says(event, account, None)
        assert await owner_of(stack, a_added["enrollment_id"]) == str(a), order
        assert await owner_of(stack, b_added["enrollment_id"]) == str(b), order
