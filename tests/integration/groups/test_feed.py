"""LWIA groups from sync-iwds' events, access through each IWDS level, program groups
from enrollment's events, merges and unmerges from identity's: real events of those
services' schemas, on their topics, through the real broker."""

from __future__ import annotations

import uuid
from datetime import date

from shared.schemas.enrollment import CustomerExited, ProgramStaffRevoked
from shared.schemas.identity import CustomerAccountsMerged, CustomerAccountsUnmerged
from shared.schemas.iwds import IwdsAccessGrant, IwdsRecordRemoved, IwdsRecordUpdated
from tests.integration.groups.conftest import Stack


async def reasons(stack: Stack, staff: object, customer: uuid.UUID) -> set[tuple[str, str]]:
    r = await stack.access(staff, customer)  # type: ignore[arg-type]
    if r.status_code == 404:
        return set()
    assert r.status_code == 200, r.text
    return {(v["name"], v["reason"]) for v in r.json()["via"]}


async def test_lwia_groups_follow_the_feed_and_each_access_level(stack: Stack) -> None:
    state = await stack.new_staff("state1")
    lwia = await stack.new_staff("lwia1")
    office = await stack.new_staff("office1")
    cm = await stack.new_staff("casemgr1")
    nobody = await stack.new_staff("nobody1")
    await stack.iwds_access(state, "S-1", IwdsAccessGrant(level="statewide"))
    await stack.iwds_access(lwia, "S-2", IwdsAccessGrant(level="lwia", lwia_code="12"))
    await stack.iwds_access(office, "S-3", IwdsAccessGrant(level="office", lwia_code="12",
                                                            office_code="03"))
    await stack.iwds_access(cm, "S-77", IwdsAccessGrant(level="caseload", lwia_code="12"))
    await stack.iwds_access(nobody, "S-9", IwdsAccessGrant(level="lwia", lwia_code="99"))

    c = await stack.known_customer("Rita", "Moreno")
    await stack.iwds_record("P-1", c, "12", "03", "S-77")
    assert await reasons(stack, state, c) == {
        ("LWIA 12", "IWDS access: statewide"),
        ("LWIA 12 office 03", "IWDS access: statewide"),
        ("LWIA 12 caseload S-77", "IWDS access: statewide")}
    assert ("LWIA 12", "IWDS access: LWIA 12") in await reasons(stack, lwia, c)
    assert await reasons(stack, office, c) == {
        ("LWIA 12 office 03", "IWDS access: LWIA 12 office 03"),
        ("LWIA 12 caseload S-77", "IWDS access: LWIA 12 office 03")}
    assert await reasons(stack, cm, c) == {("LWIA 12 caseload S-77",
                                            "IWDS access: own caseload")}
    assert await reasons(stack, nobody, c) == set()
    r = await stack.client.get("/v1/groups?kind=lwia", headers=cm.headers)
    assert [g["name"] for g in r.json()["items"]] == ["LWIA 12 caseload S-77"]

    # staff cannot hand-edit a feed group
    lwia_group = await stack.pool.fetchval("SELECT id FROM groups WHERE feed_key = 'lwia:12'")
    r = await stack.client.delete(f"/v1/groups/{lwia_group}/members/{c}",
                                  headers=(await stack.admin()).headers)
    assert r.status_code == 403

    # the office staff make a class subgroup of their office group and fill it
    office_group = await stack.pool.fetchval(
        "SELECT id FROM groups WHERE feed_key = 'office:12/03'")
    cls = await stack.new_group(office, "Forklift class", office_group)
    assert cls["kind"] == "lwia"
    r = await stack.client.post(f"/v1/groups/{cls['id']}/members", headers=office.headers,
                                json={"customer_ids": [str(c)]})
    assert r.status_code == 200, r.text
    # the case manager (caseload level) may not make subgroups of the office group
    r = await stack.client.post("/v1/groups", headers=cm.headers,
                                json={"name": "x", "parent_id": str(office_group)})
    assert r.status_code == 404

    # the record moves to another office and case manager: office access goes, and
    # the customer leaves the staff class subgroup of the old office as well
    await stack.iwds_record("P-1", c, "12", "05", "S-88")
    assert await reasons(stack, office, c) == set()
    assert await reasons(stack, cm, c) == set()
    assert ("LWIA 12", "IWDS access: LWIA 12") in await reasons(stack, lwia, c)
    assert not await stack.pool.fetchval(
        "SELECT true FROM memberships WHERE group_id = $1", uuid.UUID(cls["id"]))

    # access changes follow IwdsStaffAccessUpdated
    await stack.iwds_access(nobody, "S-9", IwdsAccessGrant(level="lwia", lwia_code="12"))
    assert ("LWIA 12", "IWDS access: LWIA 12") in await reasons(stack, nobody, c)
    await stack.iwds_access(nobody, "S-9")
    assert await reasons(stack, nobody, c) == set()

    # the record disappears: out of every LWIA group
    await stack.emit_and_wait("sync-iwds", IwdsRecordRemoved(iwds_person_id="P-1",
                                                             account_id=c))
    assert await reasons(stack, state, c) == set()
    assert await stack.pool.fetchval(
        "SELECT count(*) FROM memberships WHERE customer_id = $1", c) == 0


async def test_a_record_before_its_account_applies_when_the_account_appears(
        stack: Stack) -> None:
    state = await stack.new_staff("state2")
    await stack.iwds_access(state, "S-1", IwdsAccessGrant(level="statewide"))
    future = uuid.uuid4()
    await stack.emit_and_wait("sync-iwds", IwdsRecordUpdated(
        iwds_person_id="P-9", account_id=future, lwia_code="7", status="active"))
    assert await stack.pool.fetchval(
        "SELECT count(*) FROM memberships WHERE customer_id = $1", future) == 0

    # the account appears (a real one, made in identity)
    admin = await stack.admin()
    r = await stack.ident.post("/v1/customers", headers=admin.headers, json={
        "first_name": "Late", "last_name": "Comer", "date_of_birth": "1990-01-01"})
    assert r.status_code == 201
    real = uuid.UUID(r.json()["id"])
    await stack.emit_and_wait("sync-iwds", IwdsRecordUpdated(
        iwds_person_id="P-10", account_id=real, lwia_code="7", status="active"))
    # identity's CustomerAccountCreated is on another topic: it may reach groups after
    # the record, which then waits for it, so wait for that too
    await stack.wait_row("SELECT true FROM customers WHERE id = $1", real)
    assert await reasons(stack, state, real) == {("LWIA 7", "IWDS access: statewide")}
    # and the unknown one, once identity announces it
    from shared.schemas.identity import CustomerAccountCreated
    await stack.emit_and_wait("identity", CustomerAccountCreated(
        account_id=future, username="latecomer2", first_name="Fu", last_name="Ture",
        source="import"))
    assert await reasons(stack, state, future) == {("LWIA 7", "IWDS access: statewide")}
    lwia7 = await stack.pool.fetchval("SELECT id FROM groups WHERE feed_key = 'lwia:7'")
    r = await stack.client.get(f"/v1/groups/{lwia7}/members?source=iwds",
                               headers=state.headers)
    assert {m["customer_id"] for m in r.json()["items"]} == {str(real), str(future)}


async def test_program_groups_follow_enrollment(stack: Stack) -> None:
    worker = await stack.new_staff("reentry1", "reentry")
    other = await stack.new_staff("other5")
    c = await stack.known_customer("Ray", "Charles")
    await stack.enroll(c, "returning-citizens", worker.id)
    assert await reasons(stack, worker, c) == set()
    await stack.authorize(worker, "returning-citizens")
    assert await reasons(stack, worker, c) == {
        ("Program returning-citizens", "authorized for program returning-citizens")}
    assert await reasons(stack, other, c) == set()
    r = await stack.client.get("/v1/groups?kind=program", headers=worker.headers)
    [g] = r.json()["items"]
    assert g["member_count"] == 1

    await stack.emit_and_wait("enrollment", CustomerExited(
        enrollment_id=uuid.uuid4(), program="returning-citizens", customer_id=c,
        exited_on=date(2026, 2, 1), reason="completed"))
    assert await reasons(stack, worker, c) == set()
    await stack.enroll(c, "returning-citizens", worker.id)
    assert await reasons(stack, worker, c) != set()
    await stack.emit_and_wait("enrollment", ProgramStaffRevoked(
        program="returning-citizens", staff_id=worker.id, by=(await stack.admin()).id))
    assert await reasons(stack, worker, c) == set()


async def test_merge_moves_memberships_and_unmerge_moves_them_back(stack: Stack) -> None:
    owner = await stack.new_staff("owner6")
    admin = await stack.admin()
    survivor = await stack.new_customer(owner, "Sam", "Same")
    merged = await stack.new_customer(owner, "Sammy", "Same")
    both = await stack.new_group(owner, "Both")
    only_merged = await stack.new_group(owner, "Only merged")
    for c, g in ((survivor, both), (merged, both), (merged, only_merged)):
        r = await stack.client.post("/v1/join", headers=c.headers, json={
            "join_code": g["join_code"], "passcode": g["passcode"]})
        assert r.status_code == 200

    async def groups_of(cid: uuid.UUID) -> set[str]:
        rows = await stack.pool.fetch(
            "SELECT group_id FROM memberships WHERE customer_id = $1", cid)
        return {str(r["group_id"]) for r in rows}

    await stack.emit_and_wait("identity", CustomerAccountsMerged(
        survivor_id=survivor.id, merged_id=merged.id, by=admin.id))
    assert await groups_of(survivor.id) == {both["id"], only_merged["id"]}
    assert await groups_of(merged.id) == set()

    await stack.emit_and_wait("identity", CustomerAccountsUnmerged(
        survivor_id=survivor.id, merged_id=merged.id, by=admin.id))
    assert await groups_of(survivor.id) == {both["id"]}
    assert await groups_of(merged.id) == {both["id"], only_merged["id"]}
    assert await stack.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action LIKE 'membership.moved_by_%'") == 2
