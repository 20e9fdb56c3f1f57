"""Every rule of the Add Customer form with a bad value, over HTTP: a 422 naming each
broken field at once, nothing written, identity not even asked, the SSN never echoed."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tests.integration.enrollment.conftest import Stack, form
from tests.integration.enrollment.helpers import fields_of, match, row_counts, submit

SSN = "219-09-9999"
TODAY = date.today()  # the service's "today" is Chicago's; a day either side is avoided
TOMORROW = (TODAY + timedelta(days=2)).isoformat()


def _years_ago(years: int) -> str:
    return TODAY.replace(year=TODAY.year - years, day=min(TODAY.day, 28)).isoformat()


# (case, changes to a good form, the field that must be named)
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("institution missing", {"parent_institution": None}, "parent_institution"),
    ("institution unknown", {"parent_institution": "alcatraz"}, "parent_institution"),
    ("institution retired", {"parent_institution": "dwight"}, "parent_institution"),
    ("IDOC missing", {"idoc_number": None}, "idoc_number"),
    ("IDOC malformed", {"idoc_number": "12345R", "idoc_number_confirmation": "12345R"},
     "idoc_number"),
    ("IDOC confirmation missing", {"idoc_number_confirmation": None},
     "idoc_number_confirmation"),
    ("IDOC confirmation differs", {"idoc_number_confirmation": "R12346"},
     "idoc_number_confirmation"),
    ("first name missing", {"first_name": None}, "first_name"),
    ("first name too long", {"first_name": "A" * 101}, "first_name"),
    ("last name blank", {"last_name": "  "}, "last_name"),
    ("SSN malformed", {"ssn": "219-09-999"}, "ssn"),
    ("SSN bare digits", {"ssn": "219099999"}, "ssn"),
    ("SSN never issued", {"ssn": "666-09-9999"}, "ssn"),
    ("SSN confirmation differs", {"ssn_confirmation": "219-09-9998"}, "ssn_confirmation"),
    ("date of birth missing", {"date_of_birth": None}, "date_of_birth"),
    ("date of birth not a date", {"date_of_birth": "April 12"}, "date_of_birth"),
    ("date of birth in the future", {"date_of_birth": TOMORROW}, "date_of_birth"),
    ("date of birth 121 years ago", {"date_of_birth": _years_ago(121)}, "date_of_birth"),
    ("no county of commitment", {"counties_of_commitment": []}, "counties_of_commitment"),
    ("county of commitment unknown", {"counties_of_commitment": ["cook", "gotham"]},
     "counties_of_commitment.1"),
    ("county of commitment retired", {"counties_of_commitment": ["old-county"]},
     "counties_of_commitment.0"),
    ("MSR date missing", {"msr_date": None}, "msr_date"),
    ("MSR date malformed", {"msr_date": "2026-02-30"}, "msr_date"),
    ("MSR date before birth", {"msr_date": "1970-01-01"}, "msr_date"),
    ("MSR county unknown", {"msr_county": "gotham"}, "msr_county"),
    ("offense unknown", {"offenses": ["jaywalking"]}, "offenses.0"),
    ("offense retired", {"offenses": ["old-offense"]}, "offenses.0"),
    ("offenses not a list", {"offenses": "burglary"}, "offenses"),
    ("enrollment date missing", {"enrollment_date": None}, "enrollment_date"),
    ("enrollment date in the future", {"enrollment_date": TOMORROW}, "enrollment_date"),
    ("a field the form does not have", {"notes": SSN}, "notes"),
]


async def test_each_rule_with_a_bad_value(stack: Stack) -> None:
    admin = await stack.admin()
    for path in ("/v1/reference/counties/old-county", "/v1/reference/offenses/old-offense"):
        r = await stack.client.put(path, headers=admin.headers,
                                   json={"name": "Retired entry", "retired": True})
        assert r.status_code == 201, r.text
    staff = await stack.reentry_worker()
    before = await row_counts(stack.pool)
    for case, changes, field in CASES:
        for step in (match, submit):
            r = await step(stack, staff, form(**changes))
            assert r.status_code == 422, (case, step.__name__, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert fields_of(r) == [field], (case, r.json())
            assert SSN not in r.text and "219099999" not in r.text, case
    assert await row_counts(stack.pool) == before
    asked = await stack.identity_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'match.search'")
    assert asked == 0  # identity was never asked about a bad form


async def test_every_broken_rule_at_once(stack: Stack) -> None:
    staff = await stack.reentry_worker()
    everything_bad = {
        "parent_institution": "", "idoc_number": "Q1", "idoc_number_confirmation": "Q2",
        "first_name": "", "last_name": None, "ssn": SSN + "0", "ssn_confirmation": SSN,
        "date_of_birth": "1988-13-01", "counties_of_commitment": ["gotham"],
        "msr_date": "x", "msr_county": 17031, "offenses": [None],
        "enrollment_date": TOMORROW,
        "link_account_id": "nobody", "rejected_account_ids": ["x", SSN],
    }
    expected = {"parent_institution", "idoc_number", "idoc_number_confirmation", "first_name",
                "last_name", "ssn", "ssn_confirmation", "date_of_birth",
                "counties_of_commitment.0", "msr_date", "msr_county", "offenses.0",
                "enrollment_date"}
    r = await match(stack, staff, {k: v for k, v in everything_bad.items()
                                   if "account" not in k})
    assert r.status_code == 422
    assert set(fields_of(r)) == expected
    r = await submit(stack, staff, everything_bad)
    assert r.status_code == 422
    assert set(fields_of(r)) == expected | {
        "link_account_id", "rejected_account_ids.0", "rejected_account_ids.1"}
    assert SSN not in r.text and SSN.replace("-", "") not in r.text
    for reason in (e["reason"] for e in r.json()["errors"]):
        assert reason and "Q1" not in reason and "gotham" not in reason


async def test_malformed_requests_are_422_not_500(stack: Stack) -> None:
    staff = await stack.reentry_worker()
    h = {**staff.headers, "Content-Type": "application/json"}
    for content in (b"[1, 2]", b'"a form"', b'{"ssn": "219-09-9999",,}', b"", b"null"):
        for path in ("/v1/returning-citizens/matches", "/v1/returning-citizens"):
            r = await stack.client.post(path, content=content, headers=h)
            assert r.status_code == 422, (path, content, r.text)
            assert SSN not in r.text
    r = await submit(stack, staff, key="k" * 101)
    assert r.status_code == 422 and fields_of(r) == ["idempotency-key"]
    r = await stack.client.patch(f"/v1/returning-citizens/{SSN}", headers=h, json={})
    assert r.status_code == 422 and SSN not in r.text

    # the list's parameters, each named
    r = await stack.client.get("/v1/returning-citizens", headers=staff.headers, params={
        "msr_from": "2026-02-30", "enrolled_from": "2026-05-01", "enrolled_to": "2026-04-01",
        "status": "paroled", "sort": "ssn", "cursor": "garbage!"})
    assert r.status_code == 422
    assert set(fields_of(r)) == {"msr_from", "enrolled_to", "status", "sort"}
    r = await stack.client.get("/v1/returning-citizens", headers=staff.headers,
                               params={"cursor": "garbage!"})
    assert r.status_code == 422 and fields_of(r) == ["cursor"]
    for params in ({"limit": 0}, {"limit": 201}, {"limit": "many"}):
        r = await stack.client.get("/v1/returning-citizens", headers=staff.headers,
                                   params=params)
        assert r.status_code == 422 and fields_of(r) == ["limit"]
