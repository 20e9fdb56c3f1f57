"""Unmerge after chained merges: A into B, then B into C. Undoing A into B first would
leave A's identifiers on C, so it is refused (409 naming the later merge); undone in
order, each account gets its own identifiers and status back."""

from __future__ import annotations

import uuid

import asyncpg

from tests.integration.identity.conftest import IdentityApp, bearer
from tests.integration.identity.test_customers import post_customer, staff_token


async def _pair(pool: asyncpg.Pool, x: str, y: str) -> int:
    a, b = sorted([uuid.UUID(x), uuid.UUID(y)])
    await pool.execute(
        "INSERT INTO duplicate_pairs (account_a, account_b, score, band, evidence)"
        " VALUES ($1, $2, 0.9, 'possible', '[]') ON CONFLICT DO NOTHING", a, b)
    return int(await pool.fetchval(
        "SELECT id FROM duplicate_pairs WHERE account_a = $1 AND account_b = $2", a, b))


async def _state(pool: asyncpg.Pool) -> list[tuple[object, ...]]:
    rows = await pool.fetch(
        "SELECT c.id, c.status, c.merged_into, i.kind, i.value FROM customers c"
        " LEFT JOIN customer_identifiers i ON i.account_id = c.id ORDER BY c.id, i.value")
    return [tuple(r) for r in rows]


async def test_an_unmerge_under_a_later_merge_is_refused_naming_it(
    identity: IdentityApp, pool: asyncpg.Pool
) -> None:
    staff = await staff_token(identity)
    ids = []
    for first, idoc, born in (("Ann", "B30001", "1971-01-01"), ("Ben", "B30002", "1982-02-02"),
                              ("Cy", "B30003", "1993-03-03")):
        r = await post_customer(identity, staff, {
            "first_name": first, "last_name": f"Chain{first}", "date_of_birth": born,
            "identifiers": [{"kind": "idoc_number", "value": idoc}]})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    a, b, c = ids
    ab, bc = await _pair(pool, a, b), await _pair(pool, b, c)
    before = await _state(pool)

    r = await identity.client.post(f"/v1/duplicates/{ab}/merge", headers=bearer(staff),
                                   json={"survivor_id": b})
    assert r.status_code == 200, r.text
    r = await identity.client.post(f"/v1/duplicates/{bc}/merge", headers=bearer(staff),
                                   json={"survivor_id": c})
    assert r.status_code == 200, r.text
    on_c = {r["value"] for r in await pool.fetch(
        "SELECT value FROM customer_identifiers WHERE account_id = $1", uuid.UUID(c))}
    assert on_c == {"B30001", "B30002", "B30003"}
    chained = await _state(pool)

    r = await identity.client.post(f"/v1/duplicates/{ab}/unmerge", headers=bearer(staff))
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["type"].endswith("/later-merge-in-force")
    assert problem["later_pair_id"] == bc
    assert str(bc) in problem["detail"] and c in problem["detail"]
    assert await _state(pool) == chained  # nothing changed
    assert await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE event_type = 'CustomerAccountsUnmerged'") == 0

    # in order: the later merge, then the earlier one
    for pair_id in (bc, ab):
        r = await identity.client.post(f"/v1/duplicates/{pair_id}/unmerge",
                                       headers=bearer(staff))
        assert r.status_code == 204, r.text
    assert await _state(pool) == before
