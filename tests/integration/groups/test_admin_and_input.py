"""Admins (reach everyone, audited; hand-overs), bad input answered as one 422 or a
clean 4xx, no PII in errors, events or logs, and the kit's access check against
the running groups service."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI

from shared.servicekit.access import GroupsAccess, require_customer_access
from shared.servicekit.auth import Principal
from shared.servicekit.http import install_problem_handlers
from tests.integration.groups.conftest import Stack


async def test_admin_reaches_everyone_audited_and_hands_groups_over(stack: Stack) -> None:
    admin = await stack.admin()
    leaving = await stack.new_staff("leaving1")
    taking = await stack.new_staff("taking1")
    c = await stack.new_customer(admin, "Hana", "Over")
    g1 = await stack.new_group(leaving, "One")
    g2 = await stack.new_group(leaving, "Two")
    sub = await stack.new_group(leaving, "One-a", uuid.UUID(g1["id"]))
    await stack.client.post("/v1/join", headers=c.headers, json={
        "join_code": g1["join_code"], "passcode": g1["passcode"]})

    r = await stack.access(admin, c.id)
    assert r.status_code == 200
    assert {"group_id": None, "kind": "admin", "name": "all customers",
            "reason": "admin role: reaches every customer"} in r.json()["via"]
    row = await stack.pool.fetchrow(
        "SELECT * FROM audit_log WHERE actor_id = $1 AND action = 'customer.access'", admin.id)
    assert row is not None and row["subject_id"] == c.id
    details = row["details"] if isinstance(row["details"], dict) else json.loads(row["details"])
    assert {"group_id": None, "kind": "admin", "reason": "admin role: reaches every customer"
            } in details["via"]

    # only admins hand over; a list of groups, or all
    body = {"from_staff_id": str(leaving.id), "to_staff_id": str(taking.id),
            "group_ids": [g1["id"]]}
    assert (await stack.client.post("/v1/hand-overs", headers=leaving.headers,
                                    json=body)).status_code == 403
    r = await stack.client.post("/v1/hand-overs", headers=admin.headers, json=body)
    assert r.status_code == 200 and r.json()["group_ids"] == [g1["id"]]
    assert (await stack.access(taking, c.id)).json()["via"][0]["reason"] == "owner of the group"
    assert (await stack.access(leaving, c.id)).status_code == 404
    r = await stack.client.get(f"/v1/groups/{sub['id']}", headers=taking.headers)
    assert r.status_code == 200 and r.json()["owners"] == [
        {"staff_id": str(taking.id), "role": "owner", "username": taking.username,
         "name": "Robin Case"}]
    r = await stack.client.post("/v1/hand-overs", headers=admin.headers, json={
        "from_staff_id": str(leaving.id), "to_staff_id": str(taking.id)})
    assert r.json()["group_ids"] == [g2["id"]]
    assert await stack.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'group.handed_over'") == 2
    r = await stack.client.post("/v1/hand-overs", headers=admin.headers, json={
        "from_staff_id": str(leaving.id), "to_staff_id": str(uuid.uuid4())})
    assert r.status_code == 422


async def test_bad_input_is_one_422_and_nothing_is_written(stack: Stack) -> None:
    owner = await stack.new_staff("owner11")
    g = await stack.new_group(owner)
    before = await stack.pool.fetchval("SELECT count(*) FROM outbox")
    cases = [
        ("POST", "/v1/groups", {"name": ""}),
        ("POST", "/v1/groups", {"name": "x", "parent_id": "not-a-uuid"}),
        ("POST", "/v1/groups", {"name": "x", "extra": 1}),
        ("POST", f"/v1/groups/{g['id']}/messages", {"subject": "x" * 201, "body": ""}),
        ("POST", f"/v1/groups/{g['id']}/messages", {"subject": "ok", "body": "y" * 20_001}),
        ("POST", f"/v1/groups/{g['id']}/invitations", {"emails": ["not-an-email"]}),
        ("POST", f"/v1/groups/{g['id']}/invitations", {}),
        ("POST", f"/v1/groups/{g['id']}/members", {"customer_ids": []}),
        ("GET", f"/v1/groups/{g['id']}/members?cursor=%%%", None),
        ("GET", f"/v1/groups/{g['id']}/members?source=magic", None),
        ("GET", "/v1/groups?kind=secret", None),
    ]
    for method, url, body in cases:
        r = await stack.client.request(method, url, headers=owner.headers, json=body)
        assert r.status_code == 422, (url, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"], r.text
    r = await stack.client.get("/v1/groups/not-a-uuid", headers=owner.headers)
    assert r.status_code == 422
    r = await stack.client.get(f"/v1/groups/{uuid.uuid4()}", headers=owner.headers)
    assert r.status_code == 404
    assert await stack.pool.fetchval("SELECT count(*) FROM outbox") == before


async def test_no_ssn_or_secret_in_errors_events_or_audit(
        stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    owner = await stack.new_staff("owner12")
    g = await stack.new_group(owner)
    ssn = "219-09-9999"
    r = await stack.client.post("/v1/groups", headers=owner.headers, json={"name": ssn * 30})
    assert r.status_code == 422 and ssn not in r.text
    r = await stack.client.post(f"/v1/groups/{g['id']}/messages", headers=owner.headers,
                                json={"subject": ssn, "body": "x", "customer_ids": [ssn]})
    assert r.status_code == 422 and ssn not in r.text
    c = await stack.new_customer(owner)
    r = await stack.client.post("/v1/join", headers=c.headers,
                                json={"join_code": g["join_code"], "passcode": ssn})
    assert r.status_code == 403 and ssn not in r.text
    r = await stack.client.post("/v1/join", headers=c.headers,
                                json={"join_code": g["join_code"], "passcode": g["passcode"]})
    assert r.status_code == 200
    dump = " ".join(str(x) for x in await stack.pool.fetch("SELECT value FROM outbox"))
    dump += " ".join(str(x) for x in await stack.pool.fetch("SELECT details FROM audit_log"))
    assert ssn not in dump and g["passcode"] not in dump
    out = capsys.readouterr()
    assert ssn not in out.out + out.err and g["passcode"] not in out.out + out.err


async def test_the_kit_check_against_groups_gives_404_to_staff_outside_every_path(
        stack: Stack) -> None:
    """A route guarded as identity's GET /v1/customers/{id} will be, asking this groups."""
    owner = await stack.new_staff("owner13")
    outsider = await stack.new_staff("out13")
    c = await stack.new_customer(owner)
    g = await stack.new_group(owner)
    await stack.client.post("/v1/join", headers=c.headers, json={
        "join_code": g["join_code"], "passcode": g["passcode"]})

    app = FastAPI()
    install_problem_handlers(app)
    app.state.verifier = stack.app.state.verifier
    app.state.groups_access = GroupsAccess(client=httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stack.app), base_url="http://groups"))

    @app.get("/v1/customers/{customer_id}")
    async def read(customer_id: uuid.UUID,
                   p: Annotated[Principal, Depends(require_customer_access())]
                   ) -> dict[str, str]:
        return {"id": str(customer_id)}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://svc") as svc:
        assert (await svc.get(f"/v1/customers/{c.id}", headers=owner.headers)).status_code == 200
        r = await svc.get(f"/v1/customers/{c.id}", headers=outsider.headers)
        assert r.status_code == 404
        # the account's creator reaches it at once through groups' directory
        assert (await svc.get(f"/v1/customers/{c.id}",
                              headers=(await stack.admin()).headers)).status_code == 200
