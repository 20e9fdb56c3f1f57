"""Add Customer's match step and identity's matcher rules: a search names the person
(an SSN alone is refused, 422), and a staff member's match limit is counted by
identity across both routes (enrollment asks with the staff member's own token),
answered 429 with Retry-After by enrollment too (not 502/503)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from shared.servicekit.clock import FixedClock
from shared.servicekit.limits import Rate
from tests.integration.enrollment.conftest import Stack, form
from tests.integration.enrollment.helpers import match

SSN = "219-09-9999"


async def test_an_ssn_alone_is_no_search_on_either_route(stack: Stack) -> None:
    staff = await stack.reentry_worker()
    r = await match(stack, staff, form(first_name=None, last_name=None, date_of_birth=None))
    assert r.status_code == 422, r.text
    assert {"first_name", "last_name", "date_of_birth"} <= {
        e["field"] for e in r.json()["errors"]}
    assert SSN not in r.text and SSN.replace("-", "") not in r.text
    r = await stack.ident.post("/v1/matches", headers=staff.headers, json={"ssn": SSN})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {
        "first_name", "last_name", "date_of_birth"}
    assert not await stack.identity_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'match.search'")
    # the form names the person: asked, and answered
    assert (await match(stack, staff)).status_code == 200


async def test_a_staff_members_match_limit_spans_both_routes(stack: Stack) -> None:
    staff = await stack.reentry_worker()
    other = await stack.new_staff("rcase2", "reentry")
    await stack.authorize(other)
    ids = stack.identity.app.state.runtime.deps
    ids.limits = dataclasses.replace(ids.limits, rates={
        **ids.limits.rates, "match_staff": (Rate.per_minute(2), Rate.per_day(100))})
    ids.clock = FixedClock(datetime.now(UTC).replace(second=0, microsecond=0))

    direct = await stack.ident.post("/v1/matches", headers=staff.headers, json={
        "first_name": "Marcus", "last_name": "Oneil", "date_of_birth": "1988-04-12"})
    assert direct.status_code == 200, direct.text
    assert (await match(stack, staff)).status_code == 200
    refused = await match(stack, staff)
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "2 per minute" in refused.json()["detail"]
    assert SSN not in refused.text and SSN.replace("-", "") not in refused.text
    # enrollment recorded only the match that was answered
    assert await stack.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'returning_citizen.match'") == 1
    # identity audited the refusal against the staff member
    row = await stack.identity_pool.fetchrow(
        "SELECT actor_id, actor_kind, details::text AS details FROM audit_log"
        " WHERE action = 'match.rate_limited'")
    assert row is not None and (row["actor_id"], row["actor_kind"]) == (staff.id, "staff")
    assert "9999" not in row["details"]
    # another staff member is not affected
    assert (await match(stack, other)).status_code == 200
