"""Submitting twice, failing half-way, and identity away: one account at most, and
nothing written when identity does not answer."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest

from enrollment.app import create_app
from enrollment.settings import EnrollmentSettings
from tests.integration.enrollment.conftest import Stack, form
from tests.integration.enrollment.helpers import (
    IdentityStandIn,
    enroll,
    events,
    fields_of,
    identity_customers,
    match,
    posts_to,
    row_counts,
    submit,
    use_identity,
)


async def test_a_repeated_submit_with_one_key_makes_one_account(stack: Stack) -> None:
    staff = await stack.reentry_worker()
    first = await submit(stack, staff, key="intake-7f3a")
    second = await submit(stack, staff, key="intake-7f3a")
    assert first.status_code == second.status_code == 201, second.text
    assert first.json() == second.json()  # the temporary password too: the first result
    assert await identity_customers(stack) == 1
    assert len(await events(stack.pool, "CustomerEnrolled")) == 1
    assert await stack.pool.fetchval("SELECT count(*) FROM enrollments") == 1
    # it is the password that works
    r = await stack.ident.post("/v1/auth/token", data={
        "username": second.json()["username"], "password": second.json()["temporary_password"]})
    assert r.status_code == 200

    # the key with another form: refused, nothing made
    before = await row_counts(stack.pool)
    r = await submit(stack, staff, form(first_name="Marco"), key="intake-7f3a")
    assert r.status_code == 422, r.text
    assert r.json()["type"].endswith("/idempotency-key-reused")
    assert await row_counts(stack.pool) == before

    # two at once with a new key, for another person: one account, one enrollment
    other = form(idoc_number="K54321", idoc_number_confirmation="K54321", first_name="Lena",
                 last_name="Park", date_of_birth="1990-03-03", ssn=None)
    a, b = await asyncio.gather(submit(stack, staff, other, key="intake-9c1d"),
                                submit(stack, staff, other, key="intake-9c1d"))
    assert a.status_code == b.status_code == 201, (a.text, b.text)
    assert a.json()["enrollment_id"] == b.json()["enrollment_id"]
    assert a.json()["account_id"] == b.json()["account_id"]
    assert await identity_customers(stack) == 2
    assert len(await events(stack.pool, "CustomerEnrolled")) == 2


FAIL_ONCE = """
CREATE SEQUENCE crash_once;
CREATE FUNCTION crash_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('crash_once') = 1 THEN
        RAISE EXCEPTION 'the enrollment could not be saved (simulated crash)';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER crash_once BEFORE INSERT ON returning_citizens
    FOR EACH ROW EXECUTE FUNCTION crash_once();
"""


async def test_a_failure_after_the_account_is_finished_by_the_retry(stack: Stack) -> None:
    staff = await stack.reentry_worker()
    await stack.pool.execute(FAIL_ONCE)  # the first save fails after identity made the account
    r = await submit(stack, staff, key="intake-crash")
    assert r.status_code == 500
    assert await identity_customers(stack) == 1
    assert await stack.pool.fetchval("SELECT count(*) FROM enrollments") == 0
    assert await events(stack.pool, "CustomerEnrolled") == []
    state = await stack.pool.fetchval("SELECT state FROM intake_requests")
    assert state == "matched"

    # the retry with the same key: the same account, now enrolled; never a second one
    r = await submit(stack, staff, key="intake-crash")
    assert r.status_code == 201, r.text
    done = r.json()
    assert await identity_customers(stack) == 1
    account = await stack.identity_pool.fetchval("SELECT id FROM customers")
    assert done["account_id"] == str(account) and done["account_created"] is True
    assert await stack.pool.fetchval("SELECT count(*) FROM enrollments") == 1
    assert len(await events(stack.pool, "CustomerEnrolled")) == 1
    signin = await stack.ident.post("/v1/auth/token", data={
        "username": done["username"], "password": done["temporary_password"]})
    assert signin.status_code == 200
    # and once more: the first result
    again = await submit(stack, staff, key="intake-crash")
    assert again.status_code == 201 and again.json() == done


async def test_identity_away_gives_503_and_writes_nothing(stack: Stack) -> None:
    staff = await stack.reentry_worker()
    await enroll(stack, staff, key="before")  # the service works; its token keys are cached
    before = await row_counts(stack.pool)
    accounts = await identity_customers(stack)
    await stack.identity.stop()

    body = form(idoc_number="B22222", idoc_number_confirmation="B22222", first_name="Ann")
    for call in (match(stack, staff, body), submit(stack, staff, body),
                 submit(stack, staff, body, key="while-away")):
        r = await call
        assert r.status_code == 503, r.text
        problem = r.json()
        assert problem["type"].endswith("/identity-unavailable")
        assert "identity service is unavailable" in problem["detail"]
        assert "nothing was saved" in problem["detail"]
        assert r.headers["retry-after"]
    assert await row_counts(stack.pool) == before
    assert await identity_customers(stack) == accounts
    # the list does not need identity
    r = await stack.client.get("/v1/returning-citizens", headers=staff.headers)
    assert r.status_code == 200 and len(r.json()["items"]) == 1


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()


async def test_identity_too_slow_gives_503_in_time(
    stack: Stack, silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff = await stack.reentry_worker()
    monkeypatch.setenv("ENROLLMENT_IDENTITY_URL", f"http://127.0.0.1:{silent_port}")
    monkeypatch.setenv("ENROLLMENT_IDENTITY_TIMEOUT_SECONDS", "0.5")
    slow = create_app(EnrollmentSettings())
    before = await row_counts(stack.pool)
    async with slow.router.lifespan_context(slow), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=slow), base_url="http://enrollment") as client:
        # the service's own timeout answers (a hang would trip this guard instead)
        async with asyncio.timeout(30):
            r = await client.post("/v1/returning-citizens/matches", json=form(),
                                  headers=staff.headers)
        assert r.status_code == 503, r.text
        assert "did not answer in time" in r.json()["detail"]
        r = await client.post("/v1/returning-citizens", json=form(),
                              headers={**staff.headers, "Idempotency-Key": str(uuid.uuid4())})
        assert r.status_code == 503
    assert await row_counts(stack.pool) == before


async def test_a_submit_without_an_idempotency_key_is_refused_before_anything(
        stack: Stack) -> None:
    """Without a key a lost answer could not be finished by a retry: 428, nothing asked."""
    staff = await stack.reentry_worker()
    before = await row_counts(stack.pool)
    for key in (None, ""):
        headers = dict(staff.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        r = await stack.client.post("/v1/returning-citizens", json=form(), headers=headers)
        assert r.status_code == 428, r.text
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["type"].endswith("/idempotency-key-required")
        assert "Idempotency-Key" in problem["detail"]
    assert await row_counts(stack.pool) == before
    assert await identity_customers(stack) == 0
    asked = await stack.identity_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'match.search'")
    assert asked == 0
    # a bad form is still named field by field first
    r = await stack.client.post("/v1/returning-citizens", json=form(first_name=None),
                                headers=staff.headers)
    assert r.status_code == 422 and fields_of(r) == ["first_name"]


async def test_identity_losing_its_answer_after_making_the_account_says_what_is_known(
        stack: Stack) -> None:
    staff = await stack.reentry_worker()
    stand_in = IdentityStandIn(lose_answer=posts_to("/v1/customers"))
    identity_before = stack.app.state.runtime.deps.identity
    client = use_identity(stack.app, stand_in)
    try:
        r = await submit(stack, staff, key="intake-lost")
    finally:
        await client.aclose()
    assert stand_in.lost == 1 and await identity_customers(stack) == 1  # identity made it
    assert r.status_code == 503, r.text
    problem = r.json()
    assert problem["type"].endswith("/identity-outcome-unknown")
    assert "may have created the account" in problem["detail"]
    assert "retry with the same Idempotency-Key" in problem["detail"]
    assert "nothing was saved" not in problem["detail"]
    assert r.headers["retry-after"]
    assert await stack.pool.fetchval("SELECT count(*) FROM enrollments") == 0

    # the retry with the same key (identity answering again) finishes with that account
    stack.app.state.runtime.deps = dataclasses.replace(
        stack.app.state.runtime.deps, identity=identity_before)
    r = await submit(stack, staff, key="intake-lost")
    assert r.status_code == 201, r.text
    assert await identity_customers(stack) == 1
    account = await stack.identity_pool.fetchval("SELECT id FROM customers")
    assert r.json()["account_id"] == str(account)
