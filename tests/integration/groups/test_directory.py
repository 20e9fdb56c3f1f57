"""The directory look-ups the staff pages use: a staff member by username (any case,
404 for none), a customer by username or email only when the caller reaches them
(audited), and owners listed with their usernames and names."""

from __future__ import annotations

import uuid

from tests.integration.groups.conftest import Stack


async def test_staff_and_customers_are_found_only_as_the_caller_may_see_them(
        stack: Stack) -> None:
    owner = await stack.new_staff("dirowner")
    other = await stack.new_staff("dirother")
    c = await stack.new_customer(owner, "Lena", "Park", email="Lena.Park@example.org")

    r = await stack.client.get("/v1/directory/staff", params={"username": "DIROTHER"},
                               headers=owner.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": str(other.id), "username": "dirother", "name": "Robin Case",
                        "status": "active"}
    r = await stack.client.get("/v1/directory/staff", params={"username": "nobody"},
                               headers=owner.headers)
    assert r.status_code == 404
    r = await stack.client.get("/v1/directory/staff", params={"username": ""},
                               headers=owner.headers)
    assert r.status_code == 422
    r = await stack.client.get("/v1/directory/staff", params={"username": "dirother"},
                               headers=c.headers)
    assert r.status_code == 403

    # the creator reaches the customer: found by username and by email (any case)
    expected = {"id": str(c.id), "username": c.username, "first_name": "Lena",
                "last_name": "Park"}
    for params in ({"username": c.username.upper()}, {"email": " lena.park@EXAMPLE.org"}):
        r = await stack.client.get("/v1/directory/customers", params=params,
                                   headers=owner.headers)
        assert r.status_code == 200, r.text
        assert r.json() == {"items": [expected]}
    assert await stack.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'customer.lookup' AND subject_id = $1",
        c.id) == 2
    # another staff member does not reach them: nothing, the same as no such account
    for params in ({"username": c.username}, {"username": "nosuchname"}):
        r = await stack.client.get("/v1/directory/customers", params=params,
                                   headers=other.headers)
        assert r.status_code == 200 and r.json() == {"items": []}
    for params in ({}, {"username": c.username, "email": "lena.park@example.org"}):
        r = await stack.client.get("/v1/directory/customers", params=params,
                                   headers=owner.headers)
        assert r.status_code == 422, params

    # owners come with their usernames and names
    g = await stack.new_group(owner)
    r = await stack.client.put(f"/v1/groups/{g['id']}/owners/{other.id}", headers=owner.headers)
    assert r.status_code == 201
    r = await stack.client.get(f"/v1/groups/{g['id']}", headers=owner.headers)
    assert r.json()["owners"] == [
        {"staff_id": str(owner.id), "role": "owner", "username": "dirowner",
         "name": "Robin Case"},
        {"staff_id": str(other.id), "role": "co-owner", "username": "dirother",
         "name": "Robin Case"}]
    assert uuid.UUID(r.json()["owners"][1]["staff_id"]) == other.id
