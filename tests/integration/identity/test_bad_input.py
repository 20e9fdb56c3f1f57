"""Malformed or impossible input: a 422 naming every bad field, nothing written,
and an SSN never echoed back."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import asyncpg

from shared.servicekit.clock import SystemClock
from tests.integration.identity.conftest import IdentityApp, bearer
from tests.integration.identity.test_journey import STAFF_PASSWORD, make_staff

# the service's "today" is the portal's business date (CSC_PORTAL_TIMEZONE)
BUSINESS_TODAY = SystemClock().today()
GOOD: dict[str, Any] = {"first_name": "Dana", "last_name": "Reyes", "date_of_birth": "1985-06-01"}
TABLES = ("customers", "usernames", "outbox", "customer_identifiers", "audit_log")


async def row_counts(pool: asyncpg.Pool) -> dict[str, int]:
    return {t: int(await pool.fetchval(f"SELECT count(*) FROM {t}")) for t in TABLES}


def fields_of(body: dict[str, Any]) -> list[str]:
    return [str(e["field"]) for e in body["errors"]]


def _years_ago(years: int, days: int = 0) -> str:
    today = BUSINESS_TODAY
    try:
        then = today.replace(year=today.year - years)
    except ValueError:  # 29 February, in a year that has none
        then = today.replace(year=today.year - years, day=28)
    return (then - timedelta(days=days)).isoformat()


# (case, changes to a good body, the field that must be named, SSN that must not be echoed)
CASES: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("first name empty", {"first_name": ""}, "first_name", None),
    ("first name blank", {"first_name": "   "}, "first_name", None),
    ("last name empty", {"last_name": ""}, "last_name", None),
    ("first name 101 characters", {"first_name": "A" * 101}, "first_name", None),
    ("last name 101 characters", {"last_name": "B" * 101}, "last_name", None),
    ("last name 500 characters", {"last_name": "B" * 500}, "last_name", None),
    ("date of birth tomorrow",
     {"date_of_birth": (BUSINESS_TODAY + timedelta(days=1)).isoformat()}, "date_of_birth", None),
    ("date of birth 121 years ago", {"date_of_birth": _years_ago(121)}, "date_of_birth", None),
    ("date of birth just over 120 years ago",
     {"date_of_birth": _years_ago(120, days=1)}, "date_of_birth", None),
    ("date of birth impossible", {"date_of_birth": "1990-02-30"}, "date_of_birth", None),
    ("SSN too few digits", {"ssn": "219-09-999"}, "ssn", "219-09-999"),
    ("SSN letters", {"ssn": "219-O9-9999"}, "ssn", "219-O9-9999"),
    ("SSN mixed separators", {"ssn": "219-099999"}, "ssn", "219-099999"),
    ("SSN ten digits", {"ssn": "2190999991"}, "ssn", "2190999991"),
    ("SSN area 000", {"ssn": "000-12-3456"}, "ssn", "000-12-3456"),
    ("SSN area 666", {"ssn": "666-12-3456"}, "ssn", "666-12-3456"),
    ("SSN area 9xx", {"ssn": "912-12-3456"}, "ssn", "912-12-3456"),
    ("SSN area 9xx bare", {"ssn": "987123456"}, "ssn", "987123456"),
    ("SSN group 00", {"ssn": "219-00-3456"}, "ssn", "219-00-3456"),
    ("SSN serial 0000", {"ssn": "219-09-0000"}, "ssn", "219-09-0000"),
    ("email without domain", {"email": "dana@"}, "email", None),
    ("email without at", {"email": "dana.example.com"}, "email", None),
    ("email with space", {"email": "dana reyes@example.com"}, "email", None),
    ("unknown identifier kind",
     {"identifiers": [{"kind": "passport", "value": "X12345"}]}, "identifiers.0.kind", None),
    ("IDOC number without letter",
     {"identifiers": [{"kind": "idoc_number", "value": "123456"}]}, "identifiers.0", None),
    ("IDOC number four digits",
     {"identifiers": [{"kind": "idoc_number", "value": "R1234"}]}, "identifiers.0", None),
    ("IDOC number six digits",
     {"identifiers": [{"kind": "idoc_number", "value": "R123456"}]}, "identifiers.0", None),
    ("second identifier bad",
     {"identifiers": [{"kind": "idoc_number", "value": "R12345"},
                      {"kind": "iwds_person_id", "value": "12a"}]}, "identifiers.1", None),
]


async def test_each_bad_field_is_named_and_nothing_is_written(
    identity: IdentityApp, pool: asyncpg.Pool
) -> None:
    await make_staff()
    staff = await identity.token("rcaseworker", STAFF_PASSWORD)
    before = await row_counts(pool)
    for case, changes, field, ssn in CASES:
        r = await identity.client.post(
            "/v1/customers", headers=bearer(staff), json={**GOOD, **changes})
        assert r.status_code == 422, (case, r.text)
        assert r.headers["content-type"].startswith("application/problem+json"), case
        named = fields_of(r.json())
        assert any(f == field or f.startswith(field + ".") for f in named), (case, named)
        assert all(e["reason"] for e in r.json()["errors"]), case
        if ssn is not None:
            digits = ssn.replace("-", "")
            assert ssn not in r.text and digits not in r.text, (case, r.text)
            assert digits not in str(r.headers), case
        assert await row_counts(pool) == before, case
    # the good body itself is accepted: the cases failed for their one change
    r = await identity.client.post("/v1/customers", headers=bearer(staff), json=GOOD)
    assert r.status_code == 201, r.text


async def test_several_bad_fields_are_all_named_at_once(
    identity: IdentityApp, pool: asyncpg.Pool
) -> None:
    await make_staff()
    staff = await identity.token("rcaseworker", STAFF_PASSWORD)
    before = await row_counts(pool)
    r = await identity.client.post("/v1/customers", headers=bearer(staff), json={
        "first_name": "", "last_name": "L" * 101,
        "date_of_birth": (date.today() + timedelta(days=30)).isoformat(),
        "ssn": "666-45-6789", "email": "not-an-email",
        "identifiers": [{"kind": "idoc_number", "value": "12345"}],
    })
    assert r.status_code == 422
    assert set(fields_of(r.json())) == {
        "first_name", "last_name", "date_of_birth", "ssn", "email", "identifiers.0"}
    assert "666-45-6789" not in r.text and "666456789" not in r.text
    assert await row_counts(pool) == before


async def test_repeated_identifier_in_one_request_is_not_a_server_error(
    identity: IdentityApp, pool: asyncpg.Pool
) -> None:
    """The same IDOC number twice (in two spellings) is one identifier, not a 500."""
    await make_staff()
    staff = await identity.token("rcaseworker", STAFF_PASSWORD)
    r = await identity.client.post("/v1/customers", headers=bearer(staff), json={
        **GOOD, "identifiers": [{"kind": "idoc_number", "value": "R12345"},
                                {"kind": "idoc_number", "value": " r12345 "}]})
    assert r.status_code == 201, r.text
    rows = await pool.fetch("SELECT kind, value FROM customer_identifiers")
    assert [(x["kind"], x["value"]) for x in rows] == [("idoc_number", "R12345")]


async def test_sign_in_form_without_username_or_password_is_422(identity: IdentityApp) -> None:
    c = identity.client
    r = await c.post("/v1/auth/token", data={"password": "whatever it is, long enough"})
    assert r.status_code == 422
    assert fields_of(r.json()) == ["username"]
    r = await c.post("/v1/auth/token", data={"username": "someone"})
    assert r.status_code == 422
    assert fields_of(r.json()) == ["password"]
    r = await c.post("/v1/auth/token", data={})
    assert r.status_code == 422
    assert set(fields_of(r.json())) == {"username", "password"}
    r = await c.post("/v1/auth/token", data={"grant_type": "refresh_token"})
    assert r.status_code == 422
    assert fields_of(r.json()) == ["refresh_token"]
