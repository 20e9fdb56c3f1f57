"""The Assessment Dashboard: counts for a group with subgroups as members come and go,
the people lists and their CSV, and reminders that reach only the non-completers."""

from __future__ import annotations

import csv
import io
import uuid

from shared.schemas.groups import GroupCreated, MemberAdded, MemberRemoved
from shared.schemas.identity import CustomerAccountCreated
from tests.integration.readiness.conftest import Readiness
from tests.integration.readiness.helpers import assessment, audit_details


async def add(r: Readiness, group: uuid.UUID, customer: uuid.UUID) -> None:
    await r.publish(MemberAdded(group_id=group, kind="personal", customer_id=customer,
                                via="staff"))


async def members_known(r: Readiness, group: uuid.UUID, n: int) -> None:
    await r.wait_for("SELECT count(*) = $2 FROM group_members WHERE group_id = $1", group, n)


def counts(body: dict) -> dict[str, tuple[int, int]]:
    return {a["code"]: (a["completed"], a["not_completed"]) for a in body["assessments"]}


async def test_counts_follow_members_and_subgroups(readiness: Readiness) -> None:
    r = readiness
    sid, staff = r.staff()
    group, sub = uuid.uuid4(), uuid.uuid4()
    r.groups.groups[str(sid)] = {group}
    await r.publish(GroupCreated(group_id=group, kind="personal", name="Tuesday cohort",
                                 owner_staff_id=sid))
    await r.publish(GroupCreated(group_id=sub, kind="personal", name="Evening",
                                 parent_group_id=group, owner_staff_id=sid))
    ann, ben, cal, dee = (uuid.uuid4() for _ in range(4))
    for c in (ann, ben):
        await add(r, group, c)
    for c in (ben, cal):  # ben is in both: counted once
        await add(r, sub, c)
    await members_known(r, group, 2)
    await members_known(r, sub, 2)
    await r.post_feed([assessment(ann, "career-cluster"), assessment(ann, "work-values"),
                       assessment(cal, "career-cluster",
                                  completed_at="2026-01-10T12:00:00+00:00"),
                       assessment(dee, "career-cluster")])  # dee is in no group

    url = f"/v1/groups/{group}/assessment-dashboard"
    resp = await r.client.get(url, params={"include_subgroups": "true"}, headers=staff)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["group_id"] == str(group) and body["members"] == 3
    assert counts(body) == {"career-cluster": (2, 1), "work-interest": (0, 3),
                            "work-values": (1, 2), "skills": (0, 3)}
    only_group = (await r.client.get(url, params={"include_subgroups": "false"},
                                     headers=staff)).json()
    assert only_group["members"] == 2
    assert counts(only_group)["career-cluster"] == (1, 1)
    # the date range (business dates, both ends included)
    ranged = (await r.client.get(url, params={"from": "2026-03-01", "to": "2026-03-31"},
                                 headers=staff)).json()
    assert counts(ranged)["career-cluster"] == (1, 2)
    bad = await r.client.get(url, params={"from": "2026-03-31", "to": "2026-03-01"},
                             headers=staff)
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["to"]

    # members come and go
    await add(r, sub, dee)
    await r.publish(MemberRemoved(group_id=group, kind="personal", customer_id=ann,
                                  via="staff"))
    await members_known(r, group, 1)
    await members_known(r, sub, 3)
    body = (await r.client.get(url, headers=staff)).json()
    assert body["members"] == 3  # ben, cal, dee
    assert counts(body)["career-cluster"] == (2, 1)
    assert counts(body)["work-values"] == (0, 3)


async def test_people_list_paging_and_csv(readiness: Readiness) -> None:
    r = readiness
    sid, staff = r.staff()
    group = uuid.uuid4()
    r.groups.groups[str(sid)] = {group}
    people = sorted(uuid.uuid4() for _ in range(5))
    for i, c in enumerate(people):
        await add(r, group, c)
        await r.publish(CustomerAccountCreated(
            account_id=c, username=f"user{i}", first_name="=cmd" if i == 0 else f"First{i}",
            last_name=f"Last{i}", source="staff"), producer="identity")
    await members_known(r, group, 5)
    await r.wait_for("SELECT count(*) = 5 FROM customers WHERE id = ANY($1)", people)
    done = people[1::2]
    await r.post_feed([assessment(c, "skills") for c in done])

    url = f"/v1/groups/{group}/assessment-dashboard/skills"
    completed = (await r.client.get(url, params={"status": "completed"}, headers=staff)).json()
    assert [p["customer_id"] for p in completed["items"]] == [str(c) for c in done]
    assert completed["items"][0]["status"] == "completed"
    assert completed["items"][0]["completed_at"] == "2026-03-02T15:00:00Z"

    seen: list[str] = []
    cursor = None
    while True:
        params = {"status": "not_completed", "limit": "2", **({"cursor": cursor} if cursor
                                                             else {})}
        page = (await r.client.get(url, params=params, headers=staff)).json()
        seen += [p["customer_id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(c) for c in people if c not in done]

    resp = await r.client.get(url, params={"format": "csv"}, headers=staff)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [row["customer_id"] for row in rows] == [str(c) for c in people]
    assert [row["status"] for row in rows] == ["not_completed", "completed"] * 2 + [
        "not_completed"]
    assert rows[0]["first_name"] == "'=cmd"  # never a spreadsheet formula
    assert rows[1]["completed_at"].startswith("2026-03-02T15:00:00")
    exported = audit_details(await r.pool.fetchval(
        "SELECT details FROM audit_log WHERE action = 'readiness.dashboard_exported'"))
    assert exported["rows"] == 5 and exported["assessment_code"] == "skills"

    for params, field in (({"status": "maybe"}, "status"), ({"cursor": "nope"}, "cursor"),
                          ({"limit": "0"}, "limit")):
        bad = await r.client.get(url, params=params, headers=staff)
        assert bad.status_code == 422, params
        assert field in [e["field"] for e in bad.json()["errors"]][-1]
    assert (await r.client.get(f"/v1/groups/{group}/assessment-dashboard/tarot",
                               headers=staff)).status_code == 404


async def test_a_reminder_reaches_only_the_non_completers(readiness: Readiness) -> None:
    r = readiness
    sid, staff = r.staff()
    group = uuid.uuid4()
    r.groups.groups[str(sid)] = {group}
    people = [uuid.uuid4() for _ in range(4)]
    for c in people:
        await add(r, group, c)
    await members_known(r, group, 4)
    await r.post_feed([assessment(people[0], "work-interest"),
                       assessment(people[2], "work-interest")])
    url = f"/v1/groups/{group}/assessment-dashboard/reminders"
    body = {"assessment_code": "work-interest", "subject": "Your Work Interest assessment",
            "body": "Please finish it before Friday."}
    resp = await r.client.post(url, json=body, headers={**staff, "X-Request-ID": "remind-42"})
    assert resp.status_code == 202, resp.text
    [sent] = r.groups.messages
    assert sent["request_id"] == "remind-42"  # groups' logs join ours
    assert resp.json() == {"message_id": sent["message_id"], "recipients": 2}
    assert sorted(sent["customer_ids"]) == sorted(str(c) for c in (people[1], people[3]))
    assert (sent["subject"], sent["body"], sent["by"]) == (body["subject"], body["body"],
                                                           str(sid))
    audit = await r.pool.fetchrow(
        "SELECT actor_id, details FROM audit_log WHERE action = 'readiness.reminder_sent'")
    assert audit["actor_id"] == sid and audit_details(audit["details"])["recipients"] == 2

    await r.post_feed([assessment(people[1], "work-interest"),
                       assessment(people[3], "work-interest")])
    nobody = await r.client.post(url, json=body, headers=staff)
    assert nobody.status_code == 409
    assert len(r.groups.messages) == 1
    bad = await r.client.post(url, json={"assessment_code": "", "subject": "", "body": ""},
                              headers=staff)
    assert bad.status_code == 422
    assert sorted(e["field"] for e in bad.json()["errors"]) == [
        "body.assessment_code", "body.body", "body.subject"] or len(bad.json()["errors"]) == 3


async def test_staff_who_do_not_reach_the_group_get_404(readiness: Readiness) -> None:
    r = readiness
    _, stranger = r.staff()
    group = uuid.uuid4()
    base = f"/v1/groups/{group}/assessment-dashboard"
    for method, url, json in (("GET", base, None), ("GET", base + "/skills", None),
                              ("POST", base + "/reminders",
                               {"assessment_code": "skills", "subject": "s", "body": "b"})):
        resp = await r.client.request(method, url, json=json, headers=stranger)
        assert resp.status_code == 404, url
    assert r.groups.messages == []
    _, me = r.staff()
    assert (await r.client.get(base, headers=r.customer(uuid.uuid4()))).status_code == 403
    r.groups.failing = True
    resp = await r.client.get(base, headers=me)
    assert resp.status_code == 503
    assert resp.headers["retry-after"] == "5"
