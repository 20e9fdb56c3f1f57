"""Who sees a customer's readiness: staff who reach the customer (groups says so), audited;
404 for the others, 503 when groups cannot be asked; a customer sees only their own."""

from __future__ import annotations

import uuid

from tests.integration.readiness.conftest import Readiness
from tests.integration.readiness.helpers import assessment, audit_details, outcome


async def test_staff_who_do_not_reach_the_customer_get_404(readiness: Readiness) -> None:
    r = readiness
    account = uuid.uuid4()
    await r.post_feed([assessment(account), outcome(account)])
    sid, staff = r.staff()
    r.groups.customers[str(sid)] = {account}
    _, stranger = r.staff("admin")  # roles do not matter here: groups decides
    ok = await r.client.get(f"/v1/customers/{account}/readiness", headers=staff)
    assert ok.status_code == 200
    no = await r.client.get(f"/v1/customers/{account}/readiness", headers=stranger)
    assert no.status_code == 404
    assert no.headers["content-type"] == "application/problem+json"
    nobody = await r.client.get(f"/v1/customers/{uuid.uuid4()}/readiness", headers=stranger)
    assert nobody.status_code == 404 and nobody.json()["detail"] == no.json()["detail"]
    rows = await r.pool.fetch(
        "SELECT actor_id, actor_kind, subject_id, details FROM audit_log"
        " WHERE action = 'readiness.viewed'")
    assert [(a["actor_id"], a["actor_kind"], a["subject_id"]) for a in rows] == [
        (sid, "staff", account)]
    assert audit_details(rows[0]["details"]) == {"assessments": 1, "modules": 0,
                                                 "outcomes": 1}
    # a customer token never reaches the staff route, and no call to groups is made for it
    calls = len(r.groups.calls)
    own = await r.client.get(f"/v1/customers/{account}/readiness",
                             headers=r.customer(account))
    assert own.status_code == 403 and len(r.groups.calls) == calls
    bad = await r.client.get("/v1/customers/not-a-uuid/readiness", headers=staff)
    assert bad.status_code == 422


async def test_groups_unreachable_is_503_never_an_allow(readiness: Readiness) -> None:
    r = readiness
    account = uuid.uuid4()
    sid, staff = r.staff()
    r.groups.customers[str(sid)] = {account}
    r.groups.failing = True
    resp = await r.client.get(f"/v1/customers/{account}/readiness", headers=staff)
    assert resp.status_code == 503 and resp.headers["retry-after"] == "5"
    r.groups.failing = False
    await r.groups_server.stop()  # gone entirely: connections refused
    resp = await r.client.get(f"/v1/customers/{account}/readiness", headers=staff)
    assert resp.status_code == 503
    assert await r.pool.fetchval("SELECT count(*) FROM audit_log") == 0


async def test_a_customer_reads_their_own(readiness: Readiness) -> None:
    r = readiness
    me, other = uuid.uuid4(), uuid.uuid4()
    await r.post_feed([assessment(me, "skills"), assessment(other, "work-values")])
    resp = await r.client.get("/v1/me/readiness", headers=r.customer(me))
    assert resp.status_code == 200
    assert [a["code"] for a in resp.json()["assessments"]] == ["skills"]
    assert resp.json()["employment101"] == {"modules": [], "plan": None}
    _, staff = r.staff()
    assert (await r.client.get("/v1/me/readiness", headers=staff)).status_code == 403
    assert (await r.client.get("/v1/me/readiness")).status_code == 401
