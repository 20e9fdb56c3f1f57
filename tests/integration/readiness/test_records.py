"""Records in through both ways (the NDJSON feed and the portal's topic), one pipeline:
idempotent by record_id, the producer's time decides, bad records kept with a reason."""

from __future__ import annotations

import uuid

from shared.schemas.readiness import ReadinessRecordReported
from tests.integration.readiness.conftest import Readiness
from tests.integration.readiness.helpers import assessment, module, outcome, plan


async def staff_view(r: Readiness, account: uuid.UUID) -> dict:
    sid, headers = r.staff()
    r.groups.customers[str(sid)] = {account}
    resp = await r.client.get(f"/v1/customers/{account}/readiness", headers=headers)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def test_every_kind_through_the_feed(readiness: Readiness) -> None:
    r = readiness
    account = uuid.uuid4()
    resp = await r.post_feed([assessment(account), module(account), plan(account),
                              outcome(account)])
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"received": 4, "accepted": 4, "replaced": 0, "unchanged": 0,
                           "rejected": 0, "errors": []}
    view = await staff_view(r, account)
    [a] = view["assessments"]
    assert a["code"] == "career-cluster" and a["name"] == "Career Cluster Assessment"
    assert a["scores"] == {"health-science": 42, "it": 17.5}
    assert a["summary"] == "Health Science" and a["version"] == "2024.1"
    assert len(a["history"]) == 1
    [m] = view["employment101"]["modules"]
    assert (m["code"], m["score"], m["attempt"]) == ("ees-work-ethic", 80, 1)
    assert m["name"] == "Essential Employability Skills: Work Ethic"
    p = view["employment101"]["plan"]
    assert p["goals"] == ["Get a CDL"]
    assert p["steps"][0] == {"title": "Enroll in a CDL course", "due_on": "2026-04-01",
                             "status": "in_progress"}
    [o] = view["outcomes"]
    assert (o["outcome_kind"], o["title"], o["issued_on"], o["credential_id"]) == (
        "certificate", "ServSafe Food Handler", "2026-02-20", "SS-123456")


async def test_every_kind_through_the_topic(readiness: Readiness) -> None:
    r = readiness
    account = uuid.uuid4()
    for rec in (assessment(account, "work-values"), module(account, "ees-teamwork"),
                plan(account), outcome(account, kind="diploma", title="High School Diploma")):
        await r.publish(ReadinessRecordReported(**rec), producer="portal")
    await r.wait_for("SELECT count(*) = 4 FROM readiness_records WHERE account_id = $1",
                     account)
    view = await staff_view(r, account)
    assert [a["code"] for a in view["assessments"]] == ["work-values"]
    assert [m["code"] for m in view["employment101"]["modules"]] == ["ees-teamwork"]
    assert view["employment101"]["plan"]["goals"] == ["Get a CDL"]
    assert view["outcomes"][0]["outcome_kind"] == "diploma"
    sources = await r.pool.fetch(
        "SELECT DISTINCT source FROM readiness_records WHERE account_id = $1", account)
    assert [s["source"] for s in sources] == ["topic"]


async def test_a_bad_record_on_the_topic_is_kept_and_the_rest_applied(
        readiness: Readiness) -> None:
    r = readiness
    account = uuid.uuid4()
    bad = assessment(account, "no-such-assessment")
    await r.publish(ReadinessRecordReported(**bad), producer="portal")
    await r.publish(ReadinessRecordReported(**outcome(account)), producer="portal")
    await r.wait_for("SELECT count(*) = 1 FROM readiness_records WHERE account_id = $1",
                     account)
    await r.wait_for("SELECT true FROM rejected_records WHERE record_id = $1", bad["record_id"])
    row = await r.pool.fetchrow(
        "SELECT source, reason, kind FROM rejected_records WHERE record_id = $1",
        bad["record_id"])
    assert dict(row) == {"source": "topic", "reason": "assessment_code: not in the catalogue",
                         "kind": "assessment_completed"}
    assert await r.pool.fetchval("SELECT count(*) FROM dead_letter") == 0


async def test_a_duplicate_a_late_and_an_out_of_order_record(readiness: Readiness) -> None:
    r = readiness
    account = uuid.uuid4()
    first = plan(account, occurred_at="2026-03-01T09:00:00+00:00", goals=["old goal"])
    newer = plan(account, occurred_at="2026-03-05T09:00:00+00:00", goals=["new goal"])
    resp = await r.post_feed([newer, first])  # out of order: the older plan comes last
    assert resp.json()["accepted"] == 2
    view = await staff_view(r, account)
    assert view["employment101"]["plan"]["goals"] == ["new goal"]

    resp = await r.post_feed([newer])  # the same record again
    assert resp.json() | {"errors": []} == {"received": 1, "accepted": 0, "replaced": 0,
                                            "unchanged": 1, "rejected": 0, "errors": []}
    # a late, corrected version of a record replaces it; an older version does not
    corrected = dict(newer, occurred_at="2026-03-06T09:00:00+00:00", goals=["corrected"])
    stale = dict(newer, occurred_at="2026-03-02T09:00:00+00:00", goals=["stale"])
    resp = await r.post_feed([corrected, stale])
    assert (resp.json()["replaced"], resp.json()["unchanged"]) == (1, 1)
    resp = await r.post_feed([stale])
    assert resp.json()["unchanged"] == 1
    view = await staff_view(r, account)
    assert view["employment101"]["plan"]["goals"] == ["corrected"]
    assert await r.pool.fetchval(
        "SELECT count(*) FROM readiness_records WHERE account_id = $1", account) == 2

    # a late assessment completion joins the history without becoming the latest
    recent = assessment(account, completed_at="2026-05-01T10:00:00+00:00", summary="recent")
    late = assessment(account, completed_at="2025-11-01T10:00:00+00:00", summary="older",
                      occurred_at="2026-05-02T10:00:00+00:00")
    await r.post_feed([recent])
    await r.post_feed([late])
    [a] = (await staff_view(r, account))["assessments"]
    assert a["summary"] == "recent"
    assert [h["summary"] for h in a["history"]] == ["recent", "older"]


async def test_bad_records_beside_good_ones_are_kept_with_a_reason(readiness: Readiness
                                                                   ) -> None:
    r = readiness
    account = uuid.uuid4()
    good = [assessment(account), module(account, attempt=2)]
    bads = [
        "{not json",
        [1, 2],
        {"kind": "horoscope", "record_id": "x1", "account_id": str(account),
         "occurred_at": "2026-01-01T00:00:00Z"},
        dict(assessment(account), account_id="not-a-uuid"),
        dict(assessment(account), occurred_at="2026-01-01T00:00:00"),
        dict(assessment(account), scores={"it": "high"}),
        dict(module(account), attempt=0),
        dict(plan(account), steps=[{"title": "x", "status": "someday"}]),
        dict(outcome(account), outcome_kind="trophy"),
        dict(outcome(account), issued_on="20 Feb 2026"),
        {k: v for k, v in assessment(account).items() if k != "record_id"},
    ]
    resp = await r.post_feed([good[0], *bads, good[1]])
    assert resp.status_code == 200
    body = resp.json()
    assert (body["received"], body["accepted"], body["rejected"]) == (13, 2, 11)
    reasons = {e["line"]: e["reason"] for e in body["errors"]}
    assert reasons == {
        2: "not a JSON object",
        3: "a record must be a JSON object",
        4: "kind: must be one of assessment_completed, employment101_module_completed, "
           "employment101_plan_updated, outcome_recorded",
        5: "account_id: must be a UUID",
        6: "occurred_at: needs a UTC offset",
        7: "scores: must be a number",
        8: "attempt: must be a whole number from 1",
        9: "steps.status: must be one of not_started, in_progress, completed",
        10: "outcome_kind: must be one of certificate, credential, diploma, employment",
        11: "issued_on: must be a date (YYYY-MM-DD)",
        12: "record_id: required",
    }
    assert await r.pool.fetchval(
        "SELECT count(*) FROM rejected_records WHERE source = 'feed'") == 11
    view = await staff_view(r, account)
    assert len(view["assessments"]) == 1 and len(view["employment101"]["modules"]) == 1

    _, admin = r.staff("admin")
    listed = await r.client.get("/v1/feeds/readiness/rejected?limit=5", headers=admin)
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 5 and listed.json()["next_cursor"]
    _, plain = r.staff()
    assert (await r.client.get("/v1/feeds/readiness/rejected", headers=plain)
            ).status_code == 403


async def test_the_feed_takes_only_a_feed_client_credential(readiness: Readiness) -> None:
    r = readiness
    account = uuid.uuid4()
    line = [assessment(account)]
    _, staff = r.staff("admin")
    cases = {
        "no token": ({}, 401),
        "garbage": (r.bearer("not.a.token"), 401),
        "staff": (staff, 403),
        "customer": (r.customer(account), 403),
        "client without the scope": (r.feed_client("groups:read"), 403),
        "staff claiming the scope": (r.bearer(r.signer.token(
            str(uuid.uuid4()), kind="staff", scope="readiness:feed")), 403),
        "expired": (r.bearer(r.signer.token("portal", kind="client", ttl=-60,
                                            scope="readiness:feed")), 401),
    }
    for name, (headers, status) in cases.items():
        resp = await r.client.post("/v1/feeds/readiness", content=b"{}\n",
                                   headers={**headers})
        assert resp.status_code == status, name
        assert resp.headers["content-type"] == "application/problem+json", name
    assert await r.pool.fetchval(
        "SELECT count(*) FROM readiness_records WHERE source = 'feed'") == 0
    assert await r.pool.fetchval(
        "SELECT count(*) FROM rejected_records WHERE source = 'feed'") == 0
    ok = await r.post_feed(line, r.feed_client("groups:read readiness:feed"))
    assert ok.status_code == 200 and ok.json()["accepted"] == 1


async def test_a_long_streamed_feed_is_written_batch_by_batch(readiness: Readiness) -> None:
    r = readiness  # the fixture writes 3 records per batch
    accounts = [uuid.uuid4() for _ in range(10)]
    lines = [assessment(a, code) for a in accounts
             for code in ("career-cluster", "work-interest")]

    async def chunks():  # type: ignore[no-untyped-def]
        import json
        for rec in lines:
            text = json.dumps(rec) + "\n"
            yield text[:20].encode()  # lines split across chunks
            yield text[20:].encode()
        yield b"\n\n"  # blank lines are skipped

    resp = await r.client.post("/v1/feeds/readiness", content=chunks(),
                               headers=r.feed_client())
    assert resp.json()["accepted"] == 20 and resp.json()["rejected"] == 0
    assert await r.pool.fetchval(
        "SELECT count(*) FROM readiness_records WHERE account_id = ANY($1)", accounts) == 20


async def test_the_catalogue_is_seeded_and_admin_editable(readiness: Readiness) -> None:
    r = readiness
    _, staff = r.staff()
    _, admin = r.staff("admin")
    cat = (await r.client.get("/v1/catalogue", headers=staff)).json()
    assert [a["name"] for a in cat["assessments"]] == [
        "Career Cluster Assessment", "Work Interest Assessment", "Work Values Assessment",
        "Skills Assessment"]
    assert [m["code"] for m in cat["modules"]] == [
        "ees-personal-ethic", "ees-work-ethic", "ees-communication", "ees-teamwork"]
    account = uuid.uuid4()
    rejected = await r.post_feed([assessment(account, "reading-level")])
    assert rejected.json()["rejected"] == 1
    body = {"name": "Reading Level Assessment", "position": 5}
    assert (await r.client.put("/v1/catalogue/assessments/reading-level", json=body,
                               headers=staff)).status_code == 403
    put = await r.client.put("/v1/catalogue/assessments/reading-level", json=body,
                             headers=admin)
    assert put.status_code == 201, put.text
    again = await r.client.put("/v1/catalogue/assessments/reading-level",
                               json={**body, "active": False}, headers=admin)
    assert again.status_code == 200 and again.json()["active"] is False
    bad = await r.client.put("/v1/catalogue/modules/Bad Code!", json={"name": ""},
                             headers=admin)
    assert bad.status_code == 422
    accepted = await r.post_feed([assessment(account, "reading-level")])
    assert accepted.json()["accepted"] == 1
    audit = await r.pool.fetch("SELECT action FROM audit_log ORDER BY id")
    assert [a["action"] for a in audit] == ["readiness.catalogue.assessments.put"] * 2


async def test_an_ssn_sent_by_mistake_is_not_kept_or_echoed(readiness: Readiness) -> None:
    r = readiness
    account = uuid.uuid4()
    good = dict(outcome(account), ssn="219-09-9999")
    bad = dict(assessment(account), scores="x", social_security_number="219-09-9999")
    resp = await r.post_feed([good, bad])
    assert (resp.json()["accepted"], resp.json()["rejected"]) == (1, 1)
    assert "219-09" not in resp.text
    assert await r.pool.fetchval(
        "SELECT count(*) FROM readiness_records WHERE data::text LIKE '%219-09%'") == 0
    assert await r.pool.fetchval(
        "SELECT count(*) FROM rejected_records WHERE raw LIKE '%219-09%'") == 0
    view = await staff_view(r, account)
    assert "219-09" not in str(view)


async def test_a_line_over_the_limit_is_rejected_and_the_rest_go_on(
        readiness: Readiness) -> None:
    r = readiness
    r.app.state.runtime.deps.settings.feed_max_line_bytes = 2048  # this test's own app
    account = uuid.uuid4()
    long_line = assessment(account, summary="x" * 5000)
    resp = await r.post_feed([outcome(account), long_line, plan(account)])
    body = resp.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    assert body["errors"] == [{"line": 2, "record_id": None,
                               "reason": "line longer than 2048 bytes"}]


async def test_two_feeds_sending_the_same_records_at_once(readiness: Readiness) -> None:
    import asyncio

    r = readiness
    account = uuid.uuid4()
    records = [outcome(account, title=f"Certificate {i}") for i in range(60)]
    one, two = await asyncio.gather(r.post_feed(records), r.post_feed(records[::-1]))
    assert (one.status_code, two.status_code) == (200, 200)
    assert one.json()["accepted"] + two.json()["accepted"] == 60
    assert one.json()["unchanged"] + two.json()["unchanged"] == 60
    assert await r.pool.fetchval(
        "SELECT count(*) FROM readiness_records WHERE account_id = $1", account) == 60
