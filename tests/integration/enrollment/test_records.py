"""The Returning Citizen customer list (filters, sorting, cursor paging), the record
(every view of offenses audited before it is returned), PATCH with history and
events, and the printable hand-out."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.integration.enrollment.conftest import Stack, Staffer
from tests.integration.enrollment.helpers import enroll, events, fields_of

PEOPLE: list[dict[str, Any]] = [
    {"first_name": "Marcus", "last_name": "Oneil", "idoc_number": "R12345",
     "parent_institution": "kewanee-lsrc", "msr_date": "2026-01-15", "msr_county": "cook",
     "enrollment_date": "2025-11-03"},
    {"first_name": "Lena", "last_name": "Park", "idoc_number": "K54321",
     "parent_institution": "vienna", "msr_date": "2026-03-01", "msr_county": "will",
     "enrollment_date": "2025-10-01"},
    {"first_name": "Ana", "last_name": "Oneal", "idoc_number": "B11111",
     "parent_institution": "kewanee-lsrc", "msr_date": "2026-06-30", "msr_county": None,
     "enrollment_date": "2026-02-01"},
    {"first_name": "Tom", "last_name": "Baker", "idoc_number": "C22222",
     "parent_institution": "dixon", "msr_date": "2025-12-01", "msr_county": "cook",
     "enrollment_date": "2025-09-15"},
    {"first_name": "Zoe", "last_name": "Adams", "idoc_number": "D33333",
     "parent_institution": "vienna", "msr_date": "2026-02-10", "msr_county": "lake",
     "enrollment_date": "2026-01-10"},
]


async def add_people(stack: Stack, staff: Staffer) -> dict[str, dict[str, Any]]:
    added = {}
    for i, p in enumerate(PEOPLE):
        added[p["last_name"]] = await enroll(
            stack, staff, **p, idoc_number_confirmation=p["idoc_number"], ssn=None,
            date_of_birth=f"198{i}-0{i + 1}-1{i}")
    return added


async def names(stack: Stack, staff: Staffer, **params: Any) -> list[str]:
    r = await stack.client.get("/v1/returning-citizens", headers=staff.headers, params=params)
    assert r.status_code == 200, r.text
    return [item["last_name"] for item in r.json()["items"]]


async def test_the_list_filters_sorts_and_pages(stack: Stack) -> None:
    staff = await stack.reentry_worker()
    await add_people(stack, staff)
    assert await names(stack, staff) == ["Adams", "Baker", "Oneal", "Oneil", "Park"]
    assert await names(stack, staff, institution="kewanee-lsrc") == ["Oneal", "Oneil"]
    assert await names(stack, staff, msr_county="cook") == ["Baker", "Oneil"]
    assert await names(stack, staff, msr_from="2026-01-01", msr_to="2026-03-01") == [
        "Adams", "Oneil", "Park"]
    assert await names(stack, staff, enrolled_from="2026-01-01") == ["Adams", "Oneal"]
    assert await names(stack, staff, enrolled_to="2025-10-01") == ["Baker", "Park"]
    assert await names(stack, staff, q="one") == ["Oneal", "Oneil"]
    assert await names(stack, staff, q="Lena Pa") == ["Park"]
    assert await names(stack, staff, q="k54321") == ["Park"]
    assert await names(stack, staff, q="100%_") == []
    assert await names(stack, staff, q="one", institution="kewanee-lsrc",
                       msr_county="cook") == ["Oneil"]
    assert await names(stack, staff, status="exited") == []
    assert await names(stack, staff, sort="-enrollment_date") == [
        "Oneal", "Adams", "Oneil", "Park", "Baker"]
    assert await names(stack, staff, sort="idoc_number") == [
        "Oneal", "Baker", "Adams", "Park", "Oneil"]

    # pages of two, in order, through a cursor; the cursor belongs to its sort
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"sort": "-msr_date", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await stack.client.get("/v1/returning-citizens", headers=staff.headers,
                                   params=params)
        assert r.status_code == 200, r.text
        seen += [i["last_name"] for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ["Oneal", "Park", "Adams", "Oneil", "Baker"]
    r = await stack.client.get("/v1/returning-citizens", headers=staff.headers,
                               params={"sort": "-msr_date", "limit": 2})
    r = await stack.client.get("/v1/returning-citizens", headers=staff.headers,
                               params={"sort": "last_name", "cursor": r.json()["next_cursor"]})
    assert r.status_code == 422 and fields_of(r) == ["cursor"]

    listed = await stack.pool.fetch(
        "SELECT details FROM audit_log WHERE action = 'returning_citizen.list'"
        " AND actor_id = $1", staff.id)
    assert listed and all("enrollment_ids" in row["details"] for row in listed)


async def test_each_view_of_offenses_is_audited_first(stack: Stack) -> None:
    staff = await stack.reentry_worker()
    added = await enroll(stack, staff)
    path = f"/v1/returning-citizens/{added['enrollment_id']}"
    for expected in (1, 2):
        r = await stack.client.get(path, headers=staff.headers)
        assert r.status_code == 200 and r.json()["offenses"] == ["burglary", "drug-possession"]
        rows = await stack.pool.fetch(
            "SELECT actor_id, subject_id AS customer_id, at FROM audit_log"
            " WHERE action = 'returning_citizen.view' AND enrollment_id = $1",
            uuid.UUID(added["enrollment_id"]))
        assert len(rows) == expected
        assert rows[-1]["actor_id"] == staff.id  # who
        assert str(rows[-1]["customer_id"]) == added["account_id"]  # whose, and when
    # the list shows no offenses, so it does not count as a view of them
    r = await stack.client.get("/v1/returning-citizens", headers=staff.headers)
    assert "offenses" not in r.json()["items"][0]
    # a missing record is a 404, not an audit row
    r = await stack.client.get(f"/v1/returning-citizens/{uuid.uuid4()}",
                               headers=staff.headers)
    assert r.status_code == 404


async def test_a_view_whose_audit_row_fails_shows_nothing(stack: Stack) -> None:
    """Audited first: when the audit row cannot be written, the offenses are not shown."""
    staff = await stack.reentry_worker()
    added = await enroll(stack, staff)
    path = f"/v1/returning-citizens/{added['enrollment_id']}"
    # a sequence is not rolled back with the failing transaction: only the first fails
    await stack.pool.execute("""
        CREATE SEQUENCE audit_attempts;
        CREATE FUNCTION fail_audit_once() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('audit_attempts') = 1 THEN
                RAISE EXCEPTION 'the audit log is unavailable';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER fail_audit_once BEFORE INSERT ON audit_log
            FOR EACH ROW EXECUTE FUNCTION fail_audit_once();""")
    r = await stack.client.get(path, headers=staff.headers)
    assert r.status_code >= 500
    assert "burglary" not in r.text and added["account_id"] not in r.text
    # the failed attempt left no audit row; the next view is audited and answered
    views = "SELECT count(*) FROM audit_log WHERE action = 'returning_citizen.view'"
    assert await stack.pool.fetchval(views) == 0
    r = await stack.client.get(path, headers=staff.headers)
    assert r.status_code == 200 and r.json()["offenses"] == ["burglary", "drug-possession"]
    assert await stack.pool.fetchval(views) == 1


async def test_patch_keeps_who_changed_what(stack: Stack) -> None:
    staff = await stack.reentry_worker()
    colleague = await stack.reentry_worker("jlee")
    added = await enroll(stack, staff)
    other = await enroll(stack, staff, idoc_number="K54321", idoc_number_confirmation="K54321",
                         first_name="Lena", last_name="Park", ssn=None,
                         date_of_birth="1990-03-03")
    path = f"/v1/returning-citizens/{added['enrollment_id']}"
    r = await stack.client.patch(path, headers=colleague.headers, json={
        "parent_institution": "vienna", "msr_county": None, "enrollment_date": "2025-11-04",
        "counties_of_commitment": ["will"], "offenses": ["theft"]})
    assert r.status_code == 200, r.text
    record = r.json()
    assert record["parent_institution"] == "vienna" and record["msr_county"] is None
    assert record["counties_of_commitment"] == ["will"] and record["offenses"] == ["theft"]
    assert record["enrollment_date"] == "2025-11-04"
    change = record["history"][-1]
    assert change["action"] == "updated" and change["by"] == str(colleague.id)
    assert change["changes"]["parent_institution"] == {"from": "kewanee-lsrc", "to": "vienna"}
    assert change["changes"]["msr_county"] == {"from": "cook", "to": None}
    assert change["changes"]["offenses"] == {"from": ["burglary", "drug-possession"],
                                             "to": ["theft"]}
    [updated] = await events(stack.pool, "EnrollmentUpdated")
    assert updated.payload["institution"] == "vienna"
    assert updated.payload["cleared"] == ["msr_county"]
    assert updated.payload["counties"] == ["will"]
    assert updated.payload["enrolled_on"] == "2025-11-04"
    assert updated.payload["updated_by"] == str(colleague.id)
    assert b"theft" not in json.dumps(updated.payload).encode()

    # offenses alone: history, no event (offense data stays here)
    r = await stack.client.patch(path, headers=staff.headers, json={"offenses": []})
    assert r.status_code == 200 and r.json()["offenses"] == []
    assert len(await events(stack.pool, "EnrollmentUpdated")) == 1
    assert len(r.json()["history"]) == 3
    # nothing changed: no history, no event
    r = await stack.client.patch(path, headers=staff.headers, json={"msr_date": "2026-01-15"})
    assert r.status_code == 200 and len(r.json()["history"]) == 3

    # another open enrollment's IDOC number, names, and bad values are refused
    r = await stack.client.patch(path, headers=staff.headers, json={
        "idoc_number": "K54321", "idoc_number_confirmation": "K54321"})
    assert r.status_code == 409 and r.json()["existing_enrollment_id"] == other["enrollment_id"]
    r = await stack.client.patch(path, headers=staff.headers, json={
        "first_name": "Mark", "idoc_number": "K5", "msr_date": "soon"})
    assert r.status_code == 422
    assert set(fields_of(r)) == {"first_name", "idoc_number", "idoc_number_confirmation",
                                 "msr_date"}
    r = await stack.client.patch(path, headers=staff.headers, json={
        "idoc_number": "r77777", "idoc_number_confirmation": "R77777"})
    assert r.status_code == 200 and r.json()["idoc_number"] == "R77777"
    [_, with_idoc] = await events(stack.pool, "EnrollmentUpdated")
    assert with_idoc.payload["identifiers"] == [{"kind": "idoc_number", "value": "R77777"}]


async def test_the_handout_can_be_printed_again(stack: Stack) -> None:
    staff = await stack.reentry_worker()
    added = await enroll(stack, staff)
    path = f"/v1/returning-citizens/{added['enrollment_id']}/handout"
    r = await stack.client.post(path, headers=staff.headers, json={
        "temporary_password": "NEW1-TEMP-PASS-WORD",
        "password_expires_at": "2026-12-10T12:00:00+00:00"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"
    assert added["username"] in r.text and "NEW1-TEMP-PASS-WORD" in r.text
    assert "December 10, 2026" in r.text and "Marcus Oneil" in r.text
    r = await stack.client.post(path, headers=staff.headers)
    assert r.status_code == 200 and "Use the password you already have" in r.text


async def test_the_participants_route_audits_offenses_like_the_record_route(
        stack: Stack) -> None:
    """The participant view shows the record's history, offense codes included: it is
    audited as a view of offenses first, and shows nothing when that audit fails."""
    staff = await stack.reentry_worker()
    added = await enroll(stack, staff)
    path = f"/v1/programs/returning-citizens/participants/{added['enrollment_id']}"
    marked = ("SELECT count(*) FROM audit_log WHERE action = 'returning_citizen.view'"
              " AND enrollment_id = $1 AND actor_id = $2"
              " AND (details->>'offenses_shown')::boolean")
    enrollment_id = uuid.UUID(added["enrollment_id"])
    r = await stack.client.get(path, headers=staff.headers)
    assert r.status_code == 200, r.text
    assert "burglary" in json.dumps(r.json()["history"])  # the history holds the codes
    assert await stack.pool.fetchval(marked, enrollment_id, staff.id) == 1
    await stack.pool.execute("""
        CREATE SEQUENCE audit_attempts;
        CREATE FUNCTION fail_audit_once() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('audit_attempts') = 1 THEN
                RAISE EXCEPTION 'the audit log is unavailable';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER fail_audit_once BEFORE INSERT ON audit_log
            FOR EACH ROW EXECUTE FUNCTION fail_audit_once();""")
    r = await stack.client.get(path, headers=staff.headers)
    assert r.status_code >= 500
    assert "burglary" not in r.text and added["account_id"] not in r.text
    assert await stack.pool.fetchval(marked, enrollment_id, staff.id) == 1
    r = await stack.client.get(path, headers=staff.headers)
    assert r.status_code == 200 and "burglary" in json.dumps(r.json()["history"])
    assert await stack.pool.fetchval(marked, enrollment_id, staff.id) == 2
