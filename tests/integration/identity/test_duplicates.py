"""The duplicates queue, fed by the accounts' own events through the real broker;
merge, unmerge and dismiss; self-registration through the same matcher."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from shared.schemas.envelope import Envelope
from tests.integration.identity.conftest import IdentityApp, bearer
from tests.integration.identity.test_customers import post_customer, staff_token
from tests.support.kit import wait_until

PASSWORD = "a long and memorable passphrase"


async def _queue(ida: IdentityApp, token: str, **params: Any) -> Any:
    r = await ida.client.get("/v1/duplicates", params=params, headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


async def _register(ida: IdentityApp, **body: Any) -> Any:
    base = {"username": "breyes79", "password": PASSWORD, "first_name": "Bob",
            "last_name": "Reyes", "date_of_birth": "1979-11-03"}
    return await ida.client.post("/v1/registrations", json={**base, **body})


async def _pair_for(pool: asyncpg.Pool, a: str, b: str) -> asyncpg.Record | None:
    x, y = sorted([uuid.UUID(a), uuid.UUID(b)])
    return await pool.fetchrow(
        "SELECT * FROM duplicate_pairs WHERE account_a = $1 AND account_b = $2", x, y)


async def _account_of(pool: asyncpg.Pool, username: str) -> str | None:
    found = await pool.fetchval(
        "SELECT account_id FROM usernames WHERE username_lower = lower($1)", username)
    return str(found) if found else None


class CountingPasswords:
    """The service's own hasher, counting its hashes (the work an answer costs)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.hashes = inner, 0

    async def hash(self, password: str) -> str:
        self.hashes += 1
        return str(await self.inner.hash(password))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_self_registration_answers_alike_whether_or_not_the_person_has_an_account(
    identity: IdentityApp, pool: asyncpg.Pool
) -> None:
    staff = await staff_token(identity)
    existing = (await post_customer(identity, staff, {
        "first_name": "Robert", "last_name": "Reyes", "date_of_birth": "1979-11-02",
        "ssn": "219-09-9999", "email": "rreyes@example.org"})).json()["id"]
    counting = CountingPasswords(identity.deps.passwords)
    identity.deps.passwords = counting

    # nobody like it: an account is made
    r = await _register(identity, username="zq_new", first_name="Zora", last_name="Quill",
                        date_of_birth="2000-02-02", email="zora@example.org")
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["status"] == "received" and "local office" in answer["detail"]
    zora = await _account_of(pool, "zq_new")
    assert zora is not None
    assert await pool.fetchval(
        "SELECT count(*) FROM duplicate_pairs WHERE $1 IN (account_a, account_b)",
        uuid.UUID(zora)) == 0
    assert counting.hashes == 1

    # strong: the same SSN; the same answer, no account, held for staff
    before = await pool.fetchval("SELECT count(*) FROM customers")
    r = await _register(identity, ssn="219-09-9999")
    assert (r.status_code, r.json()) == (202, answer)
    assert existing not in r.text and "9999" not in r.text and "Reyes" not in r.text
    assert await pool.fetchval("SELECT count(*) FROM customers") == before
    assert await _account_of(pool, "breyes79") is None
    assert counting.hashes == 2  # the same argon2 work as the account made above
    assert (await identity.sign_in("breyes79", PASSWORD)).status_code == 401

    # strong without an SSN: the same names and birthday
    r = await _register(identity, username="rreyes_2", first_name="Robert",
                        date_of_birth="1979-11-02")
    assert (r.status_code, r.json()) == (202, answer)
    # an email already on an account: the same answer, held
    r = await _register(identity, username="zq_two", first_name="Other", last_name="Name",
                        date_of_birth="1999-09-09", email="Zora@Example.org")
    assert (r.status_code, r.json()) == (202, answer)
    assert await pool.fetchval("SELECT count(*) FROM customers") == before
    assert counting.hashes == 4

    # staff see the held attempts, oldest first, each with the account it may be
    held = await identity.client.get("/v1/held-registrations", headers=bearer(staff))
    assert held.status_code == 200, held.text
    items = held.json()["items"]
    assert [(i["username"], i["reason"], i["account_id"]) for i in items] == [
        ("breyes79", "strong-match", existing), ("rreyes_2", "strong-match", existing),
        ("zq_two", "email-in-use", zora)]
    assert items[0]["score"] >= 0.95 and items[0]["evidence"] and items[2]["score"] is None
    assert "219-09" not in held.text and "2190" not in held.text
    page = await identity.client.get("/v1/held-registrations", params={"limit": 2},
                                     headers=bearer(staff))
    rest = await identity.client.get(
        "/v1/held-registrations", params={"cursor": page.json()["next_cursor"]},
        headers=bearer(staff))
    assert [i["id"] for i in page.json()["items"] + rest.json()["items"]] == [
        i["id"] for i in items]
    assert (await identity.client.get("/v1/held-registrations")).status_code == 401
    bad = await identity.client.get("/v1/held-registrations", params={"cursor": "garbage!"},
                                    headers=bearer(staff))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"
    # dealt with: off the list, once
    first = items[0]["id"]
    path = f"/v1/held-registrations/{first}/dismiss"
    assert (await identity.client.post(path, headers=bearer(staff))).status_code == 204
    assert (await identity.client.post(path, headers=bearer(staff))).status_code == 409
    assert (await identity.client.post("/v1/held-registrations/999999/dismiss",
                                       headers=bearer(staff))).status_code == 404
    left = (await identity.client.get("/v1/held-registrations", headers=bearer(staff))).json()
    assert first not in [i["id"] for i in left["items"]] and len(left["items"]) == 2
    assert await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'customer.register_held'") == 3

    # possible: a nickname, a birthday one digit off, no SSN: created, and queued
    r = await _register(identity)
    assert (r.status_code, r.json()) == (202, answer)
    new = await _account_of(pool, "breyes79")
    assert new is not None
    pair = await _pair_for(pool, existing, new)
    assert pair is not None and pair["status"] == "open" and pair["band"] == "possible"
    signed = await identity.sign_in("breyes79", PASSWORD)
    assert signed.status_code == 200 and not signed.json()["password_change_required"]


async def test_registration_bad_input_names_every_field(
    identity: IdentityApp, pool: asyncpg.Pool
) -> None:
    r = await _register(identity, username="x", password="short", first_name="",
                        date_of_birth="2999-01-01", ssn="000-11-2222", email="nope")
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"username", "password", "first_name", "date_of_birth", "ssn", "email"}
    assert "000-11-2222" not in r.text
    r = await _register(identity, password="breyes79 is my long password")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "password"
    assert await pool.fetchval("SELECT count(*) FROM customers") == 0
    assert (await _register(identity)).status_code == 202
    # a taken username is refused whoever registers (before the person is looked for,
    # so a taken name cannot be used to learn whether a person has an account)
    for other in ({"first_name": "Someone", "last_name": "Else", "date_of_birth": "1950-05-05"},
                  {}):
        r = await _register(identity, **other)
        assert r.status_code == 409 and r.json()["field"] == "username"


async def test_new_accounts_are_queued_from_their_events_then_merged_and_unmerged(
    identity: IdentityApp, pool: asyncpg.Pool
) -> None:
    staff = await staff_token(identity)
    made_a = (await post_customer(identity, staff, {
        "first_name": "Robert", "last_name": "Nguyen", "date_of_birth": "1975-06-15",
        "identifiers": [{"kind": "idoc_number", "value": "B20001"}]})).json()
    a = made_a["id"]
    b = (await post_customer(identity, staff, {
        "first_name": "Bob", "last_name": "Nguyen", "date_of_birth": "1975-06-15",
        "email": "bob@example.org", "rejected_account_ids": [a]})).json()["id"]
    # `b` rejected `a`: never proposed. A third, from another intake, is proposed.
    c = (await post_customer(identity, staff, {
        "first_name": "Robert", "last_name": "Nguyen", "date_of_birth": "1975-06-15",
        "identifiers": [{"kind": "idoc_number", "value": "B20002"}],
        "rejected_account_ids": [a, b]})).json()["id"]
    d_reg = await _register(identity, username="rnguyen", first_name="Rob",
                            last_name="Nguyen", date_of_birth="1975-06-16")
    assert d_reg.status_code == 202, d_reg.text
    d_id = await _account_of(pool, "rnguyen")
    assert d_id is not None
    d = d_id

    async def queued() -> bool:
        return await _pair_for(pool, d, a) is not None and await _pair_for(pool, d, c) is not None

    await wait_until(queued, timeout=60)
    assert await _pair_for(pool, a, b) is None and await _pair_for(pool, b, c) is None

    body = await _queue(identity, staff, limit=1)
    assert len(body["items"]) == 1 and body["next_cursor"]
    top = body["items"][0]
    assert {x["account_id"] for x in top["accounts"]} <= {a, c, d, b}
    assert top["evidence"] and all("ssn" not in x or x["ssn_last4"] for x in top["accounts"])
    rest = await _queue(identity, staff, limit=10, cursor=body["next_cursor"])
    all_items = [top, *rest["items"]]
    assert len({i["id"] for i in all_items}) == len(all_items)
    scores = [i["score"] for i in all_items]
    assert scores == sorted(scores, reverse=True)
    r = await identity.client.get("/v1/duplicates", params={"cursor": "garbage!"},
                                  headers=bearer(staff))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"

    pair = await _pair_for(pool, d, a)
    assert pair is not None
    pair_id = pair["id"]
    before = {r["id"]: dict(r) for r in await pool.fetch(
        "SELECT id, status, merged_into FROM customers WHERE id = ANY($1::uuid[])",
        [uuid.UUID(a), uuid.UUID(d)])}
    idents_before = sorted(tuple(r) for r in await pool.fetch(
        "SELECT account_id, kind, value FROM customer_identifiers"))

    # a survivor that is not in the pair: 422; then merge into `a`
    r = await identity.client.post(f"/v1/duplicates/{pair_id}/merge", headers=bearer(staff),
                                   json={"survivor_id": c})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "survivor_id"
    r = await identity.client.post(f"/v1/duplicates/{pair_id}/merge", headers=bearer(staff),
                                   json={"survivor_id": d})
    assert r.status_code == 200, r.text
    assert r.json() == {"pair_id": pair_id, "survivor_id": d, "merged_id": a, "status": "merged"}
    merged = await pool.fetchrow("SELECT status, merged_into FROM customers WHERE id = $1",
                                 uuid.UUID(a))
    assert merged["status"] == "disabled" and str(merged["merged_into"]) == d
    # the merged account cannot sign in, and is told no more than a wrong password is
    refused = await identity.sign_in(made_a["username"], made_a["temporary_password"])
    wrong = await identity.sign_in(made_a["username"], "not the password at all")
    assert refused.status_code == wrong.status_code == 401
    assert "access_token" not in refused.text
    assert refused.json()["detail"] == wrong.json()["detail"]
    assert await pool.fetchval(
        "SELECT account_id FROM customer_identifiers WHERE value = 'B20001'") == uuid.UUID(d)
    again = await identity.client.post(f"/v1/duplicates/{pair_id}/merge",
                                       headers=bearer(staff), json={"survivor_id": d})
    assert again.status_code == 409
    # the merged account no longer appears in the queue or in searches
    items = (await _queue(identity, staff, limit=100))["items"]
    assert all(a not in {x["account_id"] for x in i["accounts"]} for i in items)
    r = await identity.client.post("/v1/matches", headers=bearer(staff), json={
        "first_name": "Robert", "last_name": "Nguyen", "date_of_birth": "1975-06-15"})
    assert a not in {x["account_id"] for x in r.json()["candidates"]}

    r = await identity.client.post(f"/v1/duplicates/{pair_id}/unmerge", headers=bearer(staff))
    assert r.status_code == 204, r.text
    after = {r["id"]: dict(r) for r in await pool.fetch(
        "SELECT id, status, merged_into FROM customers WHERE id = ANY($1::uuid[])",
        [uuid.UUID(a), uuid.UUID(d)])}
    assert after == before
    idents_after = sorted(tuple(r) for r in await pool.fetch(
        "SELECT account_id, kind, value FROM customer_identifiers"))
    assert idents_after == idents_before
    # unmerged, it signs in again
    back = await identity.sign_in(made_a["username"], made_a["temporary_password"])
    assert back.status_code == 200 and back.json()["password_change_required"] is True
    assert (await _pair_for(pool, d, a))["status"] == "open"  # type: ignore[index]
    r = await identity.client.post(f"/v1/duplicates/{pair_id}/unmerge", headers=bearer(staff))
    assert r.status_code == 409

    # both events went out through the outbox, with no SSN or password
    rows = await pool.fetch(
        "SELECT value FROM outbox WHERE event_type IN"
        " ('CustomerAccountsMerged', 'CustomerAccountsUnmerged') ORDER BY id")
    envs = [Envelope.from_bytes(r["value"]) for r in rows]
    assert [e.type for e in envs] == ["CustomerAccountsMerged", "CustomerAccountsUnmerged"]
    assert all(e.payload["survivor_id"] == d and e.payload["merged_id"] == a for e in envs)
    audit = [r["action"] for r in await pool.fetch(
        "SELECT action FROM audit_log WHERE action LIKE 'customer.%merge' ORDER BY id")]
    assert audit == ["customer.merge", "customer.unmerge"]

    # dismissing: off the queue, remembered, and not queued again on the next change
    r = await identity.client.post(f"/v1/duplicates/{pair_id}/dismiss", headers=bearer(staff))
    assert r.status_code == 204
    assert (await _pair_for(pool, d, a))["status"] == "dismissed"  # type: ignore[index]
    x, y = sorted([uuid.UUID(a), uuid.UUID(d)])
    assert await pool.fetchval(
        "SELECT decision FROM match_decisions WHERE account_a = $1 AND account_b = $2", x, y
    ) == "different"
    r = await identity.client.post("/v1/matches", headers=bearer(staff), json={
        "first_name": "Rob", "last_name": "Nguyen", "date_of_birth": "1975-06-16",
        "account_id": d})
    assert a not in {x["account_id"] for x in r.json()["candidates"]}
    for path in ("merge", "unmerge", "dismiss"):
        r = await identity.client.post(f"/v1/duplicates/999999/{path}", headers=bearer(staff),
                                       json={"survivor_id": d})
        assert r.status_code == 404, path
    r = await identity.client.post("/v1/duplicates/99999999999999999999/dismiss",
                                   headers=bearer(staff))
    assert r.status_code == 422
    assert json.dumps(await _queue(identity, staff)).count("219-09") == 0
