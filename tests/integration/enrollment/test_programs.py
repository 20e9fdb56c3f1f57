"""Special programs: typed, versioned application questions; the two ways in (the
customer applies, or a case worker adds them and they complete the application);
staff moving participants through the statuses, each step an event."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.enrollment.conftest import NEW_PASSWORD, RC, Stack, Staffer, bearer
from tests.integration.enrollment.helpers import events, fields_of
from tests.support.kit import wait_until

QUESTIONS: list[dict[str, Any]] = [
    {"key": "goal", "label": "What job would you like?", "type": "text", "required": True},
    {"key": "veteran", "label": "Are you a veteran?", "type": "yes_no"},
    {"key": "shift", "label": "Which shift?", "type": "choice", "options": ["day", "night"]},
]


async def customer(stack: Stack, clerk: Staffer, first: str, last: str) -> tuple[str, str]:
    """A customer account with its own password: (account id, token)."""
    r = await stack.ident.post("/v1/customers", headers=clerk.headers, json={
        "first_name": first, "last_name": last, "date_of_birth": "1991-05-05"})
    assert r.status_code == 201, r.text
    made = r.json()
    temp = await stack.token(made["username"], made["temporary_password"])
    r = await stack.ident.post("/v1/me/password", headers=bearer(temp), json={
        "current_password": made["temporary_password"], "new_password": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    return made["id"], await stack.token(made["username"], NEW_PASSWORD)


async def test_a_customer_applies_and_staff_enroll_then_exit(stack: Stack) -> None:
    admin = await stack.admin()
    r = await stack.client.put("/v1/programs/job-club", headers=admin.headers, json={
        "name": "Job Club", "description": "Weekly job search group.",
        "open_for_applications": True, "questions": QUESTIONS})
    assert r.status_code == 201, r.text
    assert r.json()["questions_version"] == 1 and len(r.json()["questions"]) == 3
    clerk = await stack.new_staff("clerk", "staff")
    account_id, token = await customer(stack, clerk, "Lena", "Park")

    r = await stack.client.get("/v1/programs", headers=bearer(token))
    assert [p["code"] for p in r.json()["items"]] == ["job-club", RC]
    r = await stack.client.post("/v1/programs/job-club/applications", headers=bearer(token),
                                json={"answers": {"veteran": "no", "shift": "evening"}})
    assert r.status_code == 422
    assert set(fields_of(r)) == {"answers.goal", "answers.veteran", "answers.shift"}
    r = await stack.client.post("/v1/programs/job-club/applications", headers=bearer(token),
                                json={"answers": {"goal": "Forklift driver", "shift": "day"}})
    assert r.status_code == 201, r.text
    applied = r.json()
    assert applied["status"] == "applied" and applied["customer_id"] == account_id
    [submitted] = await events(stack.pool, "ProgramApplicationSubmitted")
    assert submitted.payload == {"application_id": applied["application_id"],
                                 "program": "job-club", "customer_id": account_id,
                                 "enrollment_id": applied["enrollment_id"]}
    r = await stack.client.post("/v1/programs/job-club/applications", headers=bearer(token),
                                json={"answers": {"goal": "again"}})
    assert r.status_code == 409 and r.json()["type"].endswith("/already-participating")
    # staff routes are not for customers, and customer routes not for staff
    r = await stack.client.get("/v1/programs/job-club/participants", headers=bearer(token))
    assert r.status_code == 403
    r = await stack.client.post("/v1/programs/job-club/applications", headers=clerk.headers,
                                json={"answers": {}})
    assert r.status_code == 403

    # new questions are a new version; the application keeps the one it answered
    r = await stack.client.put("/v1/programs/job-club", headers=admin.headers, json={
        "name": "Job Club", "open_for_applications": True, "questions": QUESTIONS[:1]})
    assert r.status_code == 200 and r.json()["questions_version"] == 2

    coach = await stack.new_staff("coach", "staff")
    await stack.authorize(coach, "job-club")
    path = f"/v1/programs/job-club/participants/{applied['enrollment_id']}"
    today = applied["status_on"]  # the service's today
    r = await stack.client.get(path, headers=coach.headers)
    assert r.status_code == 200, r.text
    assert r.json()["applications"][0]["questions_version"] == 1
    assert r.json()["applications"][0]["answers"] == {"goal": "Forklift driver", "shift": "day"}
    assert r.json()["username"] and r.json()["first_name"] == "Lena"

    r = await stack.client.post(f"{path}/status", headers=coach.headers,
                                json={"status": "exited", "on": today, "reason": "bored"})
    assert r.status_code == 422 and fields_of(r) == ["reason"]
    r = await stack.client.post(f"{path}/status", headers=coach.headers,
                                json={"status": "enrolled", "on": today,
                                      "reason": "eligible"})
    assert r.status_code == 200 and r.json()["status"] == "enrolled"
    [enrolled] = await events(stack.pool, "CustomerEnrolled")
    assert enrolled.payload["program"] == "job-club"
    assert enrolled.payload["staff_id"] == str(coach.id)
    assert enrolled.payload["enrolled_on"] == today
    r = await stack.client.post(f"{path}/status", headers=coach.headers,
                                json={"status": "enrolled", "on": today})
    assert r.status_code == 422 and fields_of(r) == ["status"]
    r = await stack.client.post(f"{path}/status", headers=coach.headers,
                                json={"status": "exited", "on": today,
                                      "reason": "completed", "note": "got the job"})
    assert r.status_code == 200 and r.json()["exit_reason"] == "completed"
    [exited] = await events(stack.pool, "CustomerExited")
    assert exited.payload["reason"] == "completed" and exited.payload["by"] == str(coach.id)
    r = await stack.client.get(path, headers=coach.headers)
    assert [h["action"] for h in r.json()["history"]] == ["applied", "enrolled", "exited"]
    # the program's people are the coach's, not the clerk's
    r = await stack.client.get("/v1/programs/job-club/participants", headers=clerk.headers)
    assert r.status_code == 404
    r = await stack.client.get("/v1/programs/job-club/participants", headers=coach.headers,
                               params={"status": "exited"})
    assert [e["enrollment_id"] for e in r.json()["items"]] == [applied["enrollment_id"]]


async def test_a_case_worker_adds_a_customer_who_completes_the_application(
    stack: Stack
) -> None:
    admin = await stack.admin()
    r = await stack.client.put("/v1/programs/youth-works", headers=admin.headers, json={
        "name": "Youth Works", "open_for_applications": False, "questions": QUESTIONS})
    assert r.status_code == 201, r.text
    clerk = await stack.new_staff("clerk", "staff")
    account_id, token = await customer(stack, clerk, "Sam", "Rivera")
    r = await stack.client.post("/v1/programs/youth-works/applications", headers=bearer(token),
                                json={"answers": {"goal": "Welding"}})
    assert r.status_code == 409 and r.json()["type"].endswith("/closed")

    worker = await stack.new_staff("caseworker", "staff")
    await stack.authorize(worker, "youth-works")

    async def known() -> bool:
        return bool(await stack.pool.fetchval("SELECT true FROM customers WHERE id = $1",
                                              uuid.UUID(account_id)))

    await wait_until(known, timeout=20)  # from identity's CustomerAccountCreated
    r = await stack.client.post("/v1/programs/youth-works/participants", headers=worker.headers,
                                json={"customer_id": account_id, "reason": "referred"})
    assert r.status_code == 201, r.text
    invited = r.json()
    assert invited["status"] == "invited" and invited["added_by"] == str(worker.id)
    [update] = await events(stack.pool, "EnrollmentUpdated")
    assert update.payload["status"] == "invited"
    assert update.payload["customer_id"] == account_id
    r = await stack.client.post("/v1/programs/youth-works/participants", headers=worker.headers,
                                json={"customer_id": account_id})
    assert r.status_code == 409

    r = await stack.client.get("/v1/me/enrollments", headers=bearer(token))
    assert [(e["program"], e["status"]) for e in r.json()["items"]] == [("youth-works",
                                                                          "invited")]
    # the invitation lets the customer complete the application, closed program or not
    r = await stack.client.post("/v1/programs/youth-works/applications", headers=bearer(token),
                                json={"answers": {"goal": "Welding", "veteran": False}})
    assert r.status_code == 201, r.text
    assert r.json()["enrollment_id"] == invited["enrollment_id"]
    assert r.json()["status"] == "applied"

    # someone identity never told us about, and the program that has Add Customer
    r = await stack.client.post("/v1/programs/youth-works/participants", headers=worker.headers,
                                json={"customer_id": str(uuid.uuid4())})
    assert r.status_code == 404
    rc_worker = await stack.reentry_worker("rworker")
    r = await stack.client.post(f"/v1/programs/{RC}/participants", headers=rc_worker.headers,
                                json={"customer_id": account_id})
    assert r.status_code == 409 and r.json()["type"].endswith("/use-add-customer")
    r = await stack.client.put("/v1/programs/Bad Code", headers=admin.headers, json={
        "name": "", "questions": [{"key": "x", "type": "essay"}], "colour": "red"})
    assert r.status_code == 422
    assert set(fields_of(r)) >= {"code", "name", "questions.0.label", "questions.0.type",
                                 "colour"}
