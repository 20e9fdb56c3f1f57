"""Who may do what: only staff authorized for a program see its people (to others it is
not there: 404); only authorized staff with the reentry role add Returning Citizens;
admins grant and revoke, and each grant or revocation is an event."""

from __future__ import annotations

import uuid

import httpx

from shared.schemas.identity import StaffAccountUpdated
from shared.servicekit.outbox import Outbox
from tests.integration.enrollment.conftest import RC, Stack, Staffer, bearer, form
from tests.integration.enrollment.helpers import enroll, events, match, row_counts, submit
from tests.support.kit import wait_until


async def people_routes(stack: Stack, staff: Staffer, enrollment_id: str) -> dict[str, int]:
    """The status each route answers this staff member."""
    c, h = stack.client, staff.headers
    answers = {
        "list": await c.get("/v1/returning-citizens", headers=h),
        "record": await c.get(f"/v1/returning-citizens/{enrollment_id}", headers=h),
        "patch": await c.patch(f"/v1/returning-citizens/{enrollment_id}", headers=h,
                               json={"msr_county": None}),
        "handout": await c.post(f"/v1/returning-citizens/{enrollment_id}/handout", headers=h),
        "participants": await c.get(f"/v1/programs/{RC}/participants", headers=h),
        "participant": await c.get(f"/v1/programs/{RC}/participants/{enrollment_id}",
                                   headers=h),
        "status": await c.post(f"/v1/programs/{RC}/participants/{enrollment_id}/status",
                               headers=h, json={"status": "exited", "on": "2026-11-30",
                                                "reason": "other"}),
        "match": await match(stack, staff, form(idoc_number="Z11111",
                                                idoc_number_confirmation="Z11111")),
        "submit": await submit(stack, staff, form(idoc_number="Z11111",
                                                  idoc_number_confirmation="Z11111")),
    }
    for name, r in answers.items():
        if r.status_code in (403, 404):
            assert r.headers["content-type"] == "application/problem+json", name
    return {name: r.status_code for name, r in answers.items()}


async def test_staff_without_the_program_do_not_see_it(stack: Stack) -> None:
    worker = await stack.reentry_worker()
    created = await enroll(stack, worker)
    outsider = await stack.new_staff("outsider", "reentry")  # the role, not the program
    before = await row_counts(stack.pool)
    answers = await people_routes(stack, outsider, created["enrollment_id"])
    assert answers == dict.fromkeys(answers, 404), answers
    assert await row_counts(stack.pool) == before  # nothing written, not even an audit row

    # authorized without the reentry role: sees the people, may not add any
    planner = await stack.new_staff("planner", "staff")
    await stack.authorize(planner)
    r = await stack.client.get("/v1/returning-citizens", headers=planner.headers)
    assert r.status_code == 200 and len(r.json()["items"]) == 1
    r = await stack.client.get(f"/v1/returning-citizens/{created['enrollment_id']}",
                               headers=planner.headers)
    assert r.status_code == 200
    for r in (await match(stack, planner), await submit(stack, planner)):
        assert r.status_code == 403, r.text
        assert "reentry" in r.json()["detail"]

    # revoked: gone again
    admin = await stack.admin()
    r = await stack.client.delete(f"/v1/programs/{RC}/staff/{planner.id}", headers=admin.headers)
    assert r.status_code == 204
    r = await stack.client.get(f"/v1/returning-citizens/{created['enrollment_id']}",
                               headers=planner.headers)
    assert r.status_code == 404


async def test_customers_and_strangers_are_turned_away(stack: Stack) -> None:
    worker = await stack.reentry_worker()
    created = await enroll(stack, worker)
    customer = await stack.ident.post("/v1/auth/token", data={
        "username": created["username"], "password": created["temporary_password"]})
    restricted = customer.json()["access_token"]  # may only change its password
    for headers, status in (({}, 401), (bearer("not-a-token"), 401), (bearer(restricted), 403)):
        r = await stack.client.get("/v1/returning-citizens", headers=headers)
        assert r.status_code == status, (headers, r.text)
        r = await stack.client.post("/v1/returning-citizens/matches", json=form(),
                                    headers=headers)
        assert r.status_code == status
    # staff who are not admins manage nothing
    for method, path, body in (
        ("PUT", f"/v1/programs/{RC}/staff/{worker.id}", None),
        ("DELETE", f"/v1/programs/{RC}/staff/{worker.id}", None),
        ("GET", f"/v1/programs/{RC}/staff", None),
        ("PUT", "/v1/programs/job-club", {"name": "Job Club"}),
        ("PUT", "/v1/reference/counties/cook", {"name": "Cook"}),
    ):
        r = await stack.client.request(method, path, json=body, headers=worker.headers)
        assert r.status_code == 403, (method, path, r.text)


async def test_admins_grant_and_revoke_and_each_is_an_event(stack: Stack) -> None:
    admin = await stack.admin()
    worker = await stack.new_staff("rcase", "reentry")
    path = f"/v1/programs/{RC}/staff/{worker.id}"
    r = await stack.client.put(path, headers=admin.headers)
    assert r.status_code == 201, r.text
    assert (await stack.client.put(path, headers=admin.headers)).status_code == 200
    [granted] = await events(stack.pool, "ProgramStaffAuthorized")
    assert granted.subject == RC
    assert granted.payload == {"program": RC, "staff_id": str(worker.id), "by": str(admin.id)}
    r = await stack.client.get(f"/v1/programs/{RC}/staff", headers=admin.headers)
    assert [a["staff_id"] for a in r.json()["items"]] == [str(worker.id)]
    assert r.json()["items"][0]["username"] == "rcase"

    assert (await stack.client.delete(path, headers=admin.headers)).status_code == 204
    assert (await stack.client.delete(path, headers=admin.headers)).status_code == 204
    [revoked] = await events(stack.pool, "ProgramStaffRevoked")
    assert revoked.payload["staff_id"] == str(worker.id)

    # only staff identity told us about, in programs that exist
    r = await stack.client.put(f"/v1/programs/{RC}/staff/{uuid.uuid4()}", headers=admin.headers)
    assert r.status_code == 404
    r = await stack.client.put(f"/v1/programs/no-such/staff/{worker.id}", headers=admin.headers)
    assert r.status_code == 404
    r = await stack.client.put(f"/v1/programs/{RC}/staff/not-a-uuid", headers=admin.headers)
    assert r.status_code == 422


async def test_a_program_one_may_not_see_looks_like_one_that_does_not_exist(
    stack: Stack,
) -> None:
    """The 404 says nothing more than a missing program's does: same type, title, detail."""
    worker = await stack.reentry_worker()
    created = await enroll(stack, worker)
    outsider = await stack.new_staff("outsider", "reentry")

    def shape(r: httpx.Response) -> dict[str, object]:
        body = dict(r.json())
        body.pop("instance", None)  # the path asked for
        body.pop("request_id", None)
        return {"status": r.status_code, "content-type": r.headers["content-type"], **body}

    for suffix in ("participants", f"participants/{created['enrollment_id']}"):
        hidden = await stack.client.get(f"/v1/programs/{RC}/{suffix}",
                                        headers=outsider.headers)
        missing = await stack.client.get(f"/v1/programs/no-such-program/{suffix}",
                                         headers=outsider.headers)
        assert hidden.status_code == 404
        assert shape(hidden) == shape(missing), suffix
        assert created["account_id"] not in hidden.text


async def test_a_disabled_staff_account_loses_access(stack: Stack) -> None:
    worker = await stack.reentry_worker()
    r = await stack.client.get("/v1/returning-citizens", headers=worker.headers)
    assert r.status_code == 200
    # identity disables the account: its event reaches enrollment through the broker
    async with stack.identity_pool.acquire() as conn, conn.transaction():
        await Outbox("identity").add(conn, StaffAccountUpdated(
            staff_id=worker.id, username=worker.username, name="Robin Case",
            email="rcase@example.org", roles=["reentry"], status="disabled"))

    async def disabled() -> bool:
        return await stack.pool.fetchval(
            "SELECT status FROM staff WHERE id = $1", worker.id) == "disabled"

    await wait_until(disabled, timeout=20)
    # a token issued before still verifies, but reaches nobody
    r = await stack.client.get("/v1/returning-citizens", headers=worker.headers)
    assert r.status_code == 404
