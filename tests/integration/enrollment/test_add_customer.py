"""Add Customer end to end, on the real database and broker, with identity running:
no match (an account with a temporary password), a match (linked), a rejected
candidate (a new account, the rejection remembered), one IDOC number one open
enrollment."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from enrollment.repository import returning_citizens as rc_repo
from enrollment.service import add_customer
from shared.schemas.envelope import Envelope
from shared.servicekit.topics import broker_topic
from tests.integration.enrollment.conftest import NEW_PASSWORD, RC, Stack, bearer, form
from tests.integration.enrollment.helpers import (
    enroll,
    events,
    identity_customers,
    match,
    row_counts,
    submit,
)

SSN = "219-09-9999"


async def test_no_match_creates_an_account_that_must_change_its_password(stack: Stack) -> None:
    staff = await stack.reentry_worker()
    r = await match(stack, staff)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["candidates"] == [] and body["idoc_enrollments"] == []
    assert body["open_enrollment_id"] is None
    assert body["offender_search_url"].startswith("https://")

    r = await submit(stack, staff, key="intake-1")
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    created = r.json()
    assert created["account_created"] is True
    assert {"enrollment_id", "account_id", "username", "temporary_password",
            "password_expires_at", "handout_html"} <= set(created)
    page = created["handout_html"]
    assert created["username"] in page and created["temporary_password"] in page
    assert "choose a new password" in page and "Kewanee Life Skills Re-entry Center" in page

    # identity has the account, with the IDOC number, and no other
    assert await identity_customers(stack) == 1
    idoc = await stack.identity_pool.fetchval(
        "SELECT value FROM customer_identifiers WHERE account_id = $1",
        uuid.UUID(created["account_id"]))
    assert idoc == "R12345"

    # the customer signs in with the temporary password and must change it first
    first = await stack.ident.post("/v1/auth/token", data={
        "username": created["username"], "password": created["temporary_password"]})
    assert first.status_code == 200 and first.json()["password_change_required"] is True
    restricted = first.json()["access_token"]
    assert (await stack.ident.get("/v1/me", headers=bearer(restricted))).status_code == 403
    r = await stack.ident.post("/v1/me/password", headers=bearer(restricted), json={
        "current_password": created["temporary_password"], "new_password": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    again = await stack.ident.post("/v1/auth/token", data={
        "username": created["username"], "password": NEW_PASSWORD})
    assert again.status_code == 200 and again.json()["password_change_required"] is False

    # the enrollment connects the customer, the institution and the staff member
    r = await stack.client.get(f"/v1/returning-citizens/{created['enrollment_id']}",
                               headers=staff.headers)
    assert r.status_code == 200, r.text
    record = r.json()
    assert record["customer_id"] == created["account_id"]
    assert record["added_by"] == str(staff.id)
    assert record["parent_institution"] == "kewanee-lsrc"
    assert record["idoc_number"] == "R12345" and record["status"] == "enrolled"
    assert record["counties_of_commitment"] == ["cook", "will"]
    assert record["offenses"] == ["burglary", "drug-possession"]
    assert record["labels"]["counties"]["will"] == "Will"
    assert [h["action"] for h in record["history"]] == ["created"]

    # CustomerEnrolled: program, customer, institution, counties, dates, staff; no offenses
    [env] = await events(stack.pool, "CustomerEnrolled")
    assert env.subject == created["account_id"]
    assert env.payload == {
        "enrollment_id": created["enrollment_id"], "program": RC,
        "customer_id": created["account_id"], "staff_id": str(staff.id),
        "enrolled_on": "2025-11-03", "identifiers": [{"kind": "idoc_number", "value": "R12345"}],
        "institution": "kewanee-lsrc", "counties": ["cook", "will"], "msr_date": "2026-01-15",
        "msr_county": "cook"}
    assert env.correlation_id  # the request id travels with it
    raw = await stack.pool.fetchval("SELECT value FROM outbox WHERE event_type = $1",
                                    "CustomerEnrolled")
    assert b"burglary" not in bytes(raw) and b"9999" not in bytes(raw)


async def existing_account(stack: Stack, **person: Any) -> str:
    """A customer identity already has (e.g. from before prison)."""
    clerk = await stack.new_staff("frontdesk", "staff", known=False)
    body = {"first_name": "Marcus", "last_name": "Oneil", "date_of_birth": "1988-04-12",
            "ssn": SSN, **person}
    r = await stack.ident.post("/v1/customers", json=body, headers=clerk.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_an_accurate_match_is_linked_and_no_account_is_made(stack: Stack) -> None:
    existing = await existing_account(stack, email="marcus@example.org")
    staff = await stack.reentry_worker()
    r = await match(stack, staff)
    assert r.status_code == 200, r.text
    [candidate] = r.json()["candidates"]
    assert candidate["account_id"] == existing
    assert candidate["ssn_last4"] == "9999" and candidate["band"] == "strong"
    assert candidate["evidence"] and {"field", "outcome", "weight"} <= set(
        candidate["evidence"][0])
    assert SSN not in r.text and "219099999" not in r.text

    # neither linked nor rejected: 409 with the candidate, nothing made
    before = await row_counts(stack.pool)
    r = await submit(stack, staff)
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("/possible-duplicates")
    assert [c["account_id"] for c in r.json()["candidates"]] == [existing]
    assert await row_counts(stack.pool) == before
    # linking an account that is not a candidate is refused
    r = await submit(stack, staff, form(link_account_id=str(uuid.uuid4())))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "link_account_id"

    r = await submit(stack, staff, form(link_account_id=existing), key="link-1")
    assert r.status_code == 201, r.text
    linked = r.json()
    assert linked["account_id"] == existing and linked["account_created"] is False
    assert "temporary_password" not in linked
    assert "Use the password you already have" in linked["handout_html"]
    assert await identity_customers(stack) == 1
    confirmed = await stack.identity_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'match.confirm' AND subject_id = $1",
        uuid.UUID(existing))
    assert confirmed == 1
    [env] = await events(stack.pool, "CustomerEnrolled")
    assert env.payload["customer_id"] == existing

    # the same customer cannot have two open Returning Citizens enrollments
    r = await submit(stack, staff, form(idoc_number="R99999", idoc_number_confirmation="R99999",
                                        link_account_id=existing))
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("/already-enrolled")
    assert r.json()["existing_enrollment_id"] == linked["enrollment_id"]


async def test_a_rejected_candidate_gives_a_new_account_and_is_remembered(stack: Stack) -> None:
    # someone else with the same name and date of birth, and no SSN on file
    other = await existing_account(stack, ssn=None)
    staff = await stack.reentry_worker()
    r = await match(stack, staff)
    assert [c["account_id"] for c in r.json()["candidates"]] == [other]

    r = await submit(stack, staff, form(rejected_account_ids=[other]), key="reject-1")
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["account_created"] is True and created["account_id"] != other
    assert await identity_customers(stack) == 2
    a, b = sorted([uuid.UUID(other), uuid.UUID(created["account_id"])])
    remembered = await stack.identity_pool.fetchval(
        "SELECT decision FROM match_decisions WHERE account_a = $1 AND account_b = $2", a, b)
    assert remembered == "different"
    # identity no longer proposes the one for the other
    r = await stack.ident.post("/v1/matches", headers=staff.headers, json={
        "first_name": "Marcus", "last_name": "Oneil", "date_of_birth": "1988-04-12",
        "account_id": created["account_id"]})
    assert r.status_code == 200, r.text
    assert other not in [c["account_id"] for c in r.json()["candidates"]]
    audit = await stack.pool.fetchval(
        "SELECT details FROM audit_log WHERE action = 'returning_citizen.create'")
    assert audit["rejected_account_ids"] == [other]


async def test_one_idoc_number_has_one_open_enrollment(stack: Stack) -> None:
    staff = await stack.reentry_worker()
    first = await enroll(stack, staff)

    # the offender search: step 1 says the IDOC number is already enrolled
    other_person = form(first_name="Dana", last_name="Reyes", date_of_birth="1979-03-03",
                        ssn=None)
    r = await match(stack, staff, other_person)
    assert r.status_code == 200
    assert r.json()["open_enrollment_id"] == first["enrollment_id"]
    assert r.json()["idoc_enrollments"][0]["first_name"] == "Marcus"

    accounts = await identity_customers(stack)
    r = await submit(stack, staff, other_person)
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("/idoc-number-enrolled")
    assert r.json()["existing_enrollment_id"] == first["enrollment_id"]
    assert first["enrollment_id"] in r.json()["detail"]
    assert await identity_customers(stack) == accounts  # no account was made for it

    # once that enrollment is exited, the IDOC number may be enrolled again
    r = await stack.client.post(
        f"/v1/programs/{RC}/participants/{first['enrollment_id']}/status",
        headers=staff.headers, json={"status": "exited", "on": "2026-11-20",
                                     "reason": "completed"})
    assert r.status_code == 200, r.text
    [exited] = await events(stack.pool, "CustomerExited")
    assert exited.payload["reason"] == "completed"
    r = await match(stack, staff)
    assert r.json()["open_enrollment_id"] is None
    [candidate] = r.json()["candidates"]
    assert candidate["account_id"] == first["account_id"]
    r = await submit(stack, staff, form(link_account_id=first["account_id"],
                                        enrollment_date="2026-11-25"))
    assert r.status_code == 201, r.text
    assert r.json()["account_id"] == first["account_id"]
    assert len(await events(stack.pool, "CustomerEnrolled")) == 2


async def test_events_reach_the_broker_keyed_by_customer(stack: Stack) -> None:
    from tests.integration.identity.test_pii import read_topic
    from tests.support.kit import wait_until

    staff = await stack.reentry_worker()
    created = await enroll(stack, staff)
    await wait_until(stack.all_published, timeout=20)
    records = await read_topic(stack.servers.bootstrap, broker_topic("enrollment.enrollments.v1"))
    ours = [Envelope.from_bytes(r.value) for r in records
            if r.key == created["account_id"].encode()]
    assert [e.type for e in ours] == ["CustomerEnrolled"]
    assert ours[0].payload["enrollment_id"] == created["enrollment_id"]


async def test_two_intakes_of_one_idoc_number_at_once_leave_no_stray_account(
    stack: Stack,
) -> None:
    """One case worker links the person's old account while another, at the same moment,
    rejects it and creates a new one: one enrollment wins, and the other is refused
    before identity makes an account that would then belong to nobody."""
    existing = await existing_account(stack)
    one, two = await stack.reentry_worker("rcase1"), await stack.reentry_worker("rcase2")
    linking, creating = await asyncio.gather(
        submit(stack, one, form(link_account_id=existing)),
        submit(stack, two, form(rejected_account_ids=[existing])))
    assert sorted([linking.status_code, creating.status_code]) == [201, 409], (
        linking.text, creating.text)
    loser = creating if creating.status_code == 409 else linking
    assert loser.json()["type"].endswith("/idoc-number-enrolled")
    winner = linking if loser is creating else creating
    assert loser.json()["existing_enrollment_id"] == winner.json()["enrollment_id"]
    # identity holds the old account and, only if creating won, the new one
    assert await identity_customers(stack) == (1 if winner is linking else 2)
    holders = await stack.identity_pool.fetch(
        "SELECT account_id FROM customer_identifiers WHERE kind = 'idoc_number'"
        " AND value = 'R12345'")
    assert [str(r["account_id"]) for r in holders] in ([], [winner.json()["account_id"]])


async def test_an_intake_that_waits_too_long_for_its_idoc_number_is_refused_whole(
    stack: Stack, monkeypatch: pytest.MonkeyPatch,
) -> None:
    staff = await stack.reentry_worker()
    monkeypatch.setattr(add_customer, "IDOC_LOCK_WAIT_MS", 300)
    before, accounts = await row_counts(stack.pool), await identity_customers(stack)
    other = uuid.uuid4()  # another intake of R12345 is running
    assert await rc_repo.claim_idoc(stack.pool, "R12345", other, seconds=60)
    r = await submit(stack, staff, key="busy-1")
    await rc_repo.release_idoc(stack.pool, "R12345", other)
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("/idoc-number-busy")
    assert "R12345" in r.json()["detail"]
    assert await row_counts(stack.pool) == before
    assert await identity_customers(stack) == accounts
    # the number is free again, and the same key goes through
    assert (await submit(stack, staff, key="busy-1")).status_code == 201


async def test_a_claim_left_by_an_intake_that_died_is_taken_over_when_it_expires(
    stack: Stack,
) -> None:
    staff = await stack.reentry_worker()
    assert await rc_repo.claim_idoc(stack.pool, "R12345", uuid.uuid4(), seconds=0.001)
    r = await submit(stack, staff, key="after-crash")
    assert r.status_code == 201, r.text
    assert await stack.pool.fetchval("SELECT count(*) FROM idoc_claims") == 0
