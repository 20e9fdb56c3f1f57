"""Creating customers as staff (matching, idempotency), staff views and resets,
and self-service password recovery."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg

from shared.schemas.envelope import Envelope
from shared.servicekit.seal import DEV_SEAL_KEYS, Sealer, recovery_context
from tests.integration.identity.conftest import IdentityApp, bearer
from tests.integration.identity.test_bad_input import row_counts
from tests.integration.identity.test_journey import NEW_PASSWORD, STAFF_PASSWORD, make_staff

PERSON: dict[str, Any] = {
    "first_name": "Marcus", "last_name": "O'Neil", "date_of_birth": "1988-04-12",
    "ssn": "219-09-9999",
}


async def staff_token(ida: IdentityApp) -> str:
    await make_staff()
    return await ida.token("rcaseworker", STAFF_PASSWORD)


async def post_customer(
    ida: IdentityApp, token: str, body: dict[str, Any], **headers: str
) -> Any:
    return await ida.client.post("/v1/customers", json=body, headers={**bearer(token), **headers})


async def test_an_exact_ssn_match_is_proposed_not_created(
    identity: IdentityApp, pool: asyncpg.Pool
) -> None:
    staff = await staff_token(identity)
    first = await post_customer(identity, staff, PERSON)
    assert first.status_code == 201
    existing = first.json()["id"]
    before = await row_counts(pool)

    # another spelling of the same number, another name: still the same SSN
    again = {**PERSON, "first_name": "Mark", "ssn": "219099999"}
    r = await post_customer(identity, staff, again)
    assert r.status_code == 409
    body = r.json()
    assert body["type"].endswith("/possible-duplicates")
    assert [c["account_id"] for c in body["candidates"]] == [existing]
    assert body["candidates"][0]["ssn_last4"] == "9999"
    assert "ssn" not in body["candidates"][0]
    assert "219-09-9999" not in r.text and "219099999" not in r.text and "21909" not in r.text
    assert await row_counts(pool) == before

    # staff reject the candidate explicitly: now it is created
    r = await post_customer(identity, staff, {**again, "rejected_account_ids": [existing]})
    assert r.status_code == 201, r.text
    assert r.json()["id"] != existing
    assert await pool.fetchval("SELECT count(*) FROM customers") == 2
    audit = await pool.fetchval(
        "SELECT details FROM audit_log WHERE action = 'customer.create' AND subject_id = $1",
        uuid.UUID(r.json()["id"]))
    assert existing in audit
    # rejecting some other account does not silence the real candidate
    r = await post_customer(identity, staff, {**again, "rejected_account_ids": [str(uuid.uuid4())]})
    assert r.status_code == 409
    assert len(r.json()["candidates"]) == 2


async def test_an_identifier_match_and_a_taken_email_are_conflicts(
    identity: IdentityApp, pool: asyncpg.Pool
) -> None:
    staff = await staff_token(identity)
    r = await post_customer(identity, staff, {
        "first_name": "Lena", "last_name": "Park", "date_of_birth": "1990-03-03",
        "email": "Lena.Park@Example.org",
        "identifiers": [{"kind": "idoc_number", "value": "K54321"}]})
    assert r.status_code == 201
    existing = r.json()["id"]
    before = await row_counts(pool)

    r = await post_customer(identity, staff, {
        "first_name": "Someone", "last_name": "Else", "date_of_birth": "1970-01-01",
        "identifiers": [{"kind": "idoc_number", "value": "k54321"}]})
    assert r.status_code == 409
    assert [c["account_id"] for c in r.json()["candidates"]] == [existing]
    assert await row_counts(pool) == before

    r = await post_customer(identity, staff, {
        "first_name": "Other", "last_name": "Person", "date_of_birth": "1971-01-01",
        "email": "lena.park@example.org"})
    assert r.status_code == 409
    assert r.json()["field"] == "email" and "email" in r.json()["detail"]
    assert await row_counts(pool) == before


async def test_an_idempotency_key_returns_the_first_answer(
    identity: IdentityApp, pool: asyncpg.Pool
) -> None:
    staff = await staff_token(identity)
    key = {"Idempotency-Key": "create-7f3a"}
    first = await post_customer(identity, staff, PERSON, **key)
    second = await post_customer(identity, staff, PERSON, **key)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert set(first.json()) >= {"id", "username", "temporary_password"}
    assert await pool.fetchval("SELECT count(*) FROM customers") == 1
    assert await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE event_type = 'CustomerAccountCreated'") == 1
    # the stored answer holds the temporary password, so it is sealed
    sealed = bytes(await pool.fetchval("SELECT sealed_body FROM idempotency_keys"))
    assert first.json()["temporary_password"].encode() not in sealed
    assert first.json()["username"].encode() not in sealed
    # and that temporary password is the one that works
    r = await identity.sign_in(first.json()["username"], second.json()["temporary_password"])
    assert r.status_code == 200

    before = await row_counts(pool)
    r = await post_customer(identity, staff, {**PERSON, "first_name": "Marco"}, **key)
    assert r.status_code == 422
    assert r.json()["type"].endswith("/idempotency-key-reused")
    assert await row_counts(pool) == before
    # without the key the same body is a possible duplicate, not a second account
    assert (await post_customer(identity, staff, PERSON)).status_code == 409


async def test_a_double_submit_at_the_same_moment_makes_one_account(
    identity: IdentityApp, pool: asyncpg.Pool
) -> None:
    staff = await staff_token(identity)
    key = {"Idempotency-Key": "double-click"}
    body = {"first_name": "Ava", "last_name": "Stone", "date_of_birth": "1995-05-05"}
    answers = await asyncio.gather(*(post_customer(identity, staff, body, **key)
                                     for _ in range(4)))
    assert [a.status_code for a in answers] == [201] * 4
    assert len({a.json()["id"] for a in answers}) == 1
    assert len({a.json()["temporary_password"] for a in answers}) == 1
    assert await pool.fetchval("SELECT count(*) FROM customers") == 1
    assert await pool.fetchval("SELECT count(*) FROM usernames WHERE kind = 'customer'") == 1


async def test_staff_reset_of_an_unknown_account_is_404(
    identity: IdentityApp, pool: asyncpg.Pool
) -> None:
    staff = await staff_token(identity)
    before = await row_counts(pool)
    r = await identity.client.post(
        f"/v1/customers/{uuid.uuid4()}/password-reset", headers=bearer(staff))
    assert r.status_code == 404
    assert "temporary_password" not in r.text
    r = await identity.client.get(f"/v1/customers/{uuid.uuid4()}", headers=bearer(staff))
    assert r.status_code == 404
    assert await row_counts(pool) == before


async def test_viewing_a_customer_is_audited_with_the_request_id(
    identity: IdentityApp, pool: asyncpg.Pool
) -> None:
    staff = await staff_token(identity)
    created = (await post_customer(identity, staff, PERSON)).json()
    staff_id = await pool.fetchval("SELECT id FROM staff")
    r = await identity.client.get(
        f"/v1/customers/{created['id']}",
        headers={**bearer(staff), "X-Request-ID": "view-req-42"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "view-req-42"
    assert r.json()["ssn_last4"] == "9999" and "219099999" not in r.text
    rows = await pool.fetch("SELECT * FROM audit_log WHERE action = 'customer.view'")
    assert len(rows) == 1
    row = rows[0]
    assert row["request_id"] == "view-req-42"
    assert row["actor_id"] == staff_id and row["actor_kind"] == "staff"
    assert str(row["subject_id"]) == created["id"]
    async with pool.acquire() as conn:
        try:
            await conn.execute("DELETE FROM audit_log")
        except asyncpg.RaiseError as exc:
            assert "append-only" in str(exc)
        else:
            raise AssertionError("the audit log accepted a DELETE")


# -- self-service recovery -----------------------------------------------------------


async def recovery_event(pool: asyncpg.Pool) -> dict[str, Any]:
    """The one recovery event, with the token of its link (sealed for notify; opened
    here with the development seal key the test settings use)."""
    rows = await pool.fetch(
        "SELECT value FROM outbox WHERE event_type = 'PasswordRecoveryRequested'")
    assert len(rows) == 1
    payload = Envelope.from_bytes(bytes(rows[0]["value"])).parse_payload()
    event = dict(payload.model_dump())
    assert event["link_token"] is None
    link = Sealer.from_spec(DEV_SEAL_KEYS).open(
        event["sealed_link"], recovery_context(event["account_id"]))
    [event["link_token"]] = parse_qs(urlsplit(link).query)["token"]
    return event


async def test_recovery_answers_alike_and_stores_only_the_tokens_hash(
    identity: IdentityApp, pool: asyncpg.Pool
) -> None:
    staff = await staff_token(identity)
    created = (await post_customer(identity, staff, {
        **PERSON, "email": "marcus@example.org"})).json()
    outbox_before = await pool.fetchval("SELECT count(*) FROM outbox")

    unknown = await identity.client.post(
        "/v1/password-recovery", json={"email": "nobody@example.org"})
    assert unknown.status_code == 202
    assert await pool.fetchval("SELECT count(*) FROM outbox") == outbox_before
    assert await pool.fetchval("SELECT count(*) FROM recovery_tokens") == 0
    known = await identity.client.post(
        "/v1/password-recovery", json={"email": "Marcus@Example.org"})
    assert known.status_code == 202
    assert known.json() == unknown.json()

    event = await recovery_event(pool)
    assert str(event["account_id"]) == created["id"]
    assert event["email"] == "marcus@example.org"
    token = event["link_token"]
    stored = await pool.fetch("SELECT token_hash, account_id FROM recovery_tokens")
    assert len(stored) == 1
    assert bytes(stored[0]["token_hash"]) == hashlib.sha256(token.encode()).digest()
    assert token.encode() not in bytes(stored[0]["token_hash"])

    # completing sets the new password: it signs in, the temporary one does not
    r = await identity.client.post("/v1/password-recovery/complete", json={
        "token": token, "new_password": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    assert (await identity.sign_in(created["username"], created["temporary_password"])) \
        .status_code == 401
    signed_in = await identity.sign_in(created["username"], NEW_PASSWORD)
    assert signed_in.status_code == 200
    assert signed_in.json()["password_change_required"] is False

    # the link is single-use
    r = await identity.client.post("/v1/password-recovery/complete", json={
        "token": token, "new_password": "yet another fine passphrase"})
    assert r.status_code == 401
    assert (await identity.sign_in(created["username"], NEW_PASSWORD)).status_code == 200


async def test_an_expired_recovery_link_fails(identity: IdentityApp, pool: asyncpg.Pool) -> None:
    staff = await staff_token(identity)
    created = (await post_customer(identity, staff, {
        **PERSON, "email": "marcus@example.org"})).json()
    await identity.client.post("/v1/password-recovery", json={"email": "marcus@example.org"})
    token = (await recovery_event(pool))["link_token"]
    minutes = await pool.fetchval(
        "SELECT extract(epoch FROM expires_at - created_at) / 60 FROM recovery_tokens")
    assert 29.9 < float(minutes) <= 30.1
    await pool.execute("UPDATE recovery_tokens SET expires_at = now() - interval '1 second'")
    r = await identity.client.post("/v1/password-recovery/complete", json={
        "token": token, "new_password": NEW_PASSWORD})
    assert r.status_code == 401
    assert (await identity.sign_in(created["username"], NEW_PASSWORD)).status_code == 401
    assert (await identity.sign_in(created["username"], created["temporary_password"])) \
        .status_code == 200
