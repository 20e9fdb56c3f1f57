"""Rate limits: per staff member (and per machine client) on the matcher, per calling
address on the public doors; 429 problems with Retry-After, audited and logged
without what was asked. The windows are fixed, so each test pins identity's clock."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

from identity.domain.limits import client_address, parse_networks
from identity.service.clients import create_client
from shared.servicekit.clock import FixedClock
from shared.servicekit.limits import Rate
from tests.integration.identity.conftest import IdentityApp, bearer
from tests.integration.identity.test_journey import STAFF_PASSWORD, make_staff
from tests.integration.identity.test_pii import leaks, restore_logging  # noqa: F401
from tests.integration.identity.test_signin import running_identity

SSN = "219-09-9999"
PERSON = {"first_name": "Marcus", "last_name": "Oneil", "date_of_birth": "1988-04-12"}


def pin_clock(ida: IdentityApp, at: datetime | None = None) -> FixedClock:
    """identity's clock held at the start of this minute (every call in one window)."""
    clock = FixedClock(at or datetime.now(UTC).replace(second=0, microsecond=0))
    ida.deps.clock = clock
    return clock


async def search(ida: IdentityApp, token: str, **body: Any) -> httpx.Response:
    return await ida.client.post("/v1/matches", json=body, headers=bearer(token))


def subject(token: str) -> uuid.UUID:
    return uuid.UUID(jwt.decode(token, options={"verify_signature": False})["sub"])


async def test_the_31st_search_in_a_minute_is_refused_for_that_staff_member_only(
    restore_logging: None, capsys: pytest.CaptureFixture[str],  # noqa: F811
    identity_env: dict[str, str], pool: asyncpg.Pool,
) -> None:
    async with running_identity() as (ida, app):
        ida.app = app
        await make_staff()
        await make_staff("rother")
        staff = await ida.token("rcaseworker", STAFF_PASSWORD)
        other = await ida.token("rother", STAFF_PASSWORD)
        r = await ida.client.post("/v1/customers", headers=bearer(staff),
                                  json={**PERSON, "ssn": SSN})
        assert r.status_code == 201, r.text
        clock = pin_clock(ida)

        answers = [await search(ida, staff, **PERSON, ssn=SSN) for _ in range(31)]
        assert [a.status_code for a in answers[:30]] == [200] * 30
        refused = answers[30]
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["detail"] == "at most 30 per minute"
        assert not leaks(refused.text)
        # another staff member is not affected; the first stays refused in this minute
        assert (await search(ida, other, **PERSON)).status_code == 200
        assert (await search(ida, staff, **PERSON)).status_code == 429
        # the next minute, again
        clock.advance(timedelta(minutes=1))
        assert (await search(ida, staff, **PERSON)).status_code == 200

    rows = await pool.fetch(
        "SELECT actor_id, actor_kind, details::text AS details FROM audit_log"
        " WHERE action = 'match.rate_limited' ORDER BY id")
    assert [(r["actor_id"], r["actor_kind"]) for r in rows] == [(subject(staff), "staff")] * 2
    details = json.loads(rows[0]["details"])
    assert details["route"] == "POST /v1/matches" and details["limit"] == "at most 30 per minute"
    assert not [r for r in rows if leaks(r["details"]) or "9999" in r["details"]]
    searches = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'match.search'")
    assert searches == 30 + 1 + 1  # the refused ones never searched
    logs = capsys.readouterr().out
    warned = [line for line in logs.splitlines() if "match_rate_limited" in line]
    assert len(warned) == 2 and str(subject(staff)) in warned[0] and '"warning"' in warned[0]
    assert "service_started" in logs and not [line for line in logs.splitlines() if leaks(line)]


async def test_the_daily_limit_and_machine_clients_counted_apart(
    identity_env: dict[str, str], pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in (("MATCH_RATE_PER_MINUTE", "3"), ("MATCH_RATE_PER_DAY", "5"),
                        ("MATCH_CLIENT_RATE_PER_MINUTE", "4")):
        monkeypatch.setenv(f"IDENTITY_{name}", value)
    async with running_identity() as (ida, app):
        ida.app = app
        await make_staff()
        staff = await ida.token("rcaseworker", STAFF_PASSWORD)
        client_id, secret = await create_client(pool, "sync-iwds", ["identity:match"])
        r = await ida.client.post("/v1/auth/token", data={
            "grant_type": "client_credentials", "client_id": str(client_id),
            "client_secret": secret})
        assert r.status_code == 200, r.text
        machine = r.json()["access_token"]
        clock = pin_clock(ida, datetime.now(UTC).replace(hour=1, minute=0, second=0,
                                                         microsecond=0))

        assert [(await search(ida, staff, **PERSON)).status_code for _ in range(4)] == [
            200, 200, 200, 429]
        clock.advance(timedelta(minutes=1))
        assert [(await search(ida, staff, **PERSON)).status_code for _ in range(2)] == [
            200, 200]
        day = await search(ida, staff, **PERSON)
        assert day.status_code == 429 and day.json()["detail"] == "at most 5 per day"
        assert int(day.headers["retry-after"]) == 23 * 3600 - 60
        # the machine client has its own count (and its own, higher, limit)
        assert [(await search(ida, machine, **PERSON)).status_code for _ in range(5)] == [
            200, 200, 200, 200, 429]
    kinds = [r["actor_kind"] for r in await pool.fetch(
        "SELECT actor_kind FROM audit_log WHERE action = 'match.rate_limited' ORDER BY id")]
    assert kinds == ["staff", "staff", "client"]


async def test_the_public_doors_are_limited_per_address(
    identity_env: dict[str, str], pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SIGNIN", "REGISTRATION", "RECOVERY"):
        monkeypatch.setenv(f"IDENTITY_{name}_RATE_PER_MINUTE", "2")
    monkeypatch.setenv("IDENTITY_TRUSTED_PROXIES", "127.0.0.1")
    async with running_identity() as (ida, app):
        ida.app = app
        await make_staff()
        pin_clock(ida)
        c = ida.client
        wrong = {"username": "rcaseworker", "password": "not the password at all"}
        assert [(await c.post("/v1/auth/token", data=wrong)).status_code
                for _ in range(3)] == [401, 401, 429]
        r = await c.post("/v1/auth/token", data={"username": "rcaseworker",
                                                 "password": STAFF_PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["type"].endswith("/rate-limited")
        # another address (through the trusted proxy that names it) is not affected
        elsewhere = {"X-Forwarded-For": "203.0.113.9"}
        ok = await c.post("/v1/auth/token", headers=elsewhere,
                          data={"username": "rcaseworker", "password": STAFF_PASSWORD})
        assert ok.status_code == 200
        # a refresh is not a guess: not counted
        refreshed = await c.post("/v1/auth/token", data={
            "grant_type": "refresh_token", "refresh_token": ok.json()["refresh_token"]})
        assert refreshed.status_code == 200

        person = {"username": "zq_new", "password": "a long and memorable passphrase",
                  "first_name": "Zora", "last_name": "Quill", "date_of_birth": "2000-02-02"}
        codes = [(await c.post("/v1/registrations", json={**person, "username": f"zq{i}"})
                  ).status_code for i in range(2)]
        bad = await c.post("/v1/registrations", json={"username": "x"})  # counted too
        assert codes == [202, 202] and bad.status_code == 429  # the second held
        assert await pool.fetchval("SELECT count(*) FROM customers") == 1

        asked = [(await c.post("/v1/password-recovery", json={"email": "a@example.org"})
                  ).status_code for _ in range(2)]
        completed = await c.post("/v1/password-recovery/complete",
                                 json={"token": "x" * 43, "new_password": "whatever it is"})
        assert asked == [202, 202] and completed.status_code == 429
        assert "retry-after" in completed.headers


def test_the_client_address_behind_a_trusted_proxy() -> None:
    trusted = parse_networks("10.0.0.5, 172.18.0.0/16")
    assert client_address("198.51.100.7", "203.0.113.9", trusted) == "198.51.100.7"
    assert client_address("10.0.0.5", "203.0.113.9", trusted) == "203.0.113.9"
    assert client_address("10.0.0.5", "203.0.113.9, 172.18.0.3", trusted) == "203.0.113.9"
    assert client_address("10.0.0.5", "1.2.3.4, 203.0.113.9", trusted) == "203.0.113.9"
    assert client_address("10.0.0.5", "not an address", trusted) == "10.0.0.5"
    assert client_address("10.0.0.5", None, trusted) == "10.0.0.5"
    assert client_address(None, "203.0.113.9", trusted) == "unknown"
    with pytest.raises(ValueError, match="'nope' is not an address"):
        parse_networks("10.0.0.1, nope")


async def test_candidates_of_a_new_customer_count_as_a_search(
    identity: IdentityApp, pool: asyncpg.Pool,
) -> None:
    """POST /v1/customers answers 409 with the candidates and their evidence: the same
    answer as a search, so it is counted as one (a customer with no candidate is not)."""
    await make_staff()
    staff = await identity.token("rcaseworker", STAFF_PASSWORD)
    identity.deps.limits = dataclasses.replace(identity.deps.limits, rates={
        **identity.deps.limits.rates, "match_staff": (Rate.per_minute(2), Rate.per_day(50))})
    pin_clock(identity)
    c = identity.client
    people = [("Ann", "Zyx", "1970-01-01"), ("Bartholomew", "Quimby", "1981-07-19"),
              ("Cordelia", "Fairweather", "1993-11-30")]
    for first, last, born in people:  # three new people: no candidates, not counted
        r = await c.post("/v1/customers", headers=bearer(staff), json={
            "first_name": first, "last_name": last, "date_of_birth": born})
        assert r.status_code == 201, r.text
    same = {"first_name": "Ann", "last_name": "Zyx", "date_of_birth": "1970-01-01",
            "ssn": SSN}
    answers = [await c.post("/v1/customers", headers=bearer(staff), json=same)
               for _ in range(3)]
    assert [a.status_code for a in answers] == [409, 409, 429]
    assert "candidates" not in answers[2].json() and not leaks(answers[2].text)
    assert answers[2].headers["retry-after"]
    assert (await search(identity, staff, **PERSON)).status_code == 429
    assert await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'match.rate_limited'") == 2
