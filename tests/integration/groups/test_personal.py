"""Personal groups: create, passcode join (right, wrong, rotated, switched off,
throttled), co-owners, subgroups (depth, parent's members only, removal cascading),
and the access they give with its reason."""

from __future__ import annotations

import uuid

from tests.integration.groups.conftest import Stack


async def test_passcode_join_and_the_access_it_gives(stack: Stack) -> None:
    owner = await stack.new_staff("owner1")
    other = await stack.new_staff("other1")
    customer = await stack.new_customer(other, "Lena", "Park")
    g = await stack.new_group(owner, "Resume workshop")
    assert g["kind"] == "personal" and g["parent_id"] is None
    assert g["join_code"] and g["passcode"]

    # before joining: the owner does not reach the customer (404, not 403)
    r = await stack.access(owner, customer.id)
    assert r.status_code == 404

    r = await stack.client.post("/v1/join", headers=customer.headers, json={
        "join_code": g["join_code"], "passcode": g["passcode"].lower()})
    assert r.status_code == 200, r.text
    assert r.json() == {"group_id": g["id"]}

    r = await stack.access(owner, customer.id)
    assert r.status_code == 200, r.text
    assert r.json() == {"customer_id": str(customer.id), "via": [{
        "group_id": g["id"], "kind": "personal", "name": "Resume workshop",
        "reason": "owner of the group"}]}
    # the account's creator reaches it too, with that reason
    via = (await stack.access(other, customer.id)).json()["via"]
    assert [v["reason"] for v in via] == ["created the account"]

    r = await stack.client.get(f"/v1/groups/{g['id']}/members", headers=owner.headers)
    assert r.status_code == 200
    [m] = r.json()["items"]
    assert m["customer_id"] == str(customer.id) and m["source"] == "passcode"
    assert (m["first_name"], m["last_name"]) == ("Lena", "Park")
    assert r.json()["next_cursor"] is None

    r = await stack.client.get("/v1/me/groups", headers=customer.headers)
    assert [(i["group_id"], i["source"]) for i in r.json()["items"]] == [(g["id"], "passcode")]

    # joining twice keeps one membership
    r = await stack.client.post("/v1/join", headers=customer.headers, json={
        "join_code": g["join_code"], "passcode": g["passcode"]})
    assert r.status_code == 200
    assert await stack.pool.fetchval(
        "SELECT count(*) FROM memberships WHERE customer_id = $1", customer.id) == 1

    # the audit log has the access check and the member list read
    actions = {r["action"] for r in await stack.pool.fetch(
        "SELECT action FROM audit_log WHERE actor_id = $1", owner.id)}
    assert {"customer.access", "customer.listed_in_group", "group.created"} <= actions


async def test_wrong_rotated_switched_off_and_throttled(stack: Stack) -> None:
    owner = await stack.new_staff("owner2")
    c1 = await stack.new_customer(owner, "Ada", "One")
    c2 = await stack.new_customer(owner, "Bo", "Two")
    g = await stack.new_group(owner)
    code, old = g["join_code"], g["passcode"]

    async def join(c: object, passcode: str, join_code: str = code) -> int:
        r = await stack.client.post("/v1/join", headers=c.headers,  # type: ignore[attr-defined]
                                    json={"join_code": join_code, "passcode": passcode})
        return r.status_code

    r = await stack.client.post(f"/v1/groups/{g['id']}/passcode", headers=owner.headers)
    assert r.status_code == 200
    new = r.json()["passcode"]
    assert new != old
    assert await join(c1, old) == 403  # rotated: the old one is wrong now
    assert await join(c1, "nonsense") == 403
    assert await join(c1, new, "nosuchcode1") == 403
    assert await stack.pool.fetchval(
        "SELECT count(*) FROM memberships WHERE group_id = $1", uuid.UUID(g["id"])) == 0

    # switched off: a clear 409, nothing written
    r = await stack.client.delete(f"/v1/groups/{g['id']}/passcode", headers=owner.headers)
    assert r.status_code == 204
    r = await stack.client.post("/v1/join", headers=c2.headers,
                                json={"join_code": code, "passcode": new})
    assert r.status_code == 409 and r.json()["type"].endswith("joining-switched-off")
    r = await stack.client.post(f"/v1/groups/{g['id']}/passcode", headers=owner.headers)
    fresh = r.json()["passcode"]

    # c1 has 3 failures; two more reach the limit: the sixth try is 429 even when right
    assert await join(c1, "wrong4") == 403
    assert await join(c1, "wrong5") == 403
    r = await stack.client.post("/v1/join", headers=c1.headers,
                                json={"join_code": code, "passcode": fresh})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    # the group has 4 failures charged to it: one more from c2 locks the group too
    assert await join(c2, "wrong") == 403
    assert await join(c2, fresh) == 429
    assert await stack.pool.fetchval(
        "SELECT count(*) FROM memberships WHERE group_id = $1", uuid.UUID(g["id"])) == 0


async def test_only_owners_manage_and_outsiders_get_404(stack: Stack) -> None:
    owner = await stack.new_staff("owner3")
    co = await stack.new_staff("co3")
    outsider = await stack.new_staff("out3")
    customer = await stack.new_customer(owner)
    g = await stack.new_group(owner)
    await stack.client.post("/v1/join", headers=customer.headers, json={
        "join_code": g["join_code"], "passcode": g["passcode"]})

    for r in [await stack.client.get(f"/v1/groups/{g['id']}", headers=outsider.headers),
              await stack.client.get(f"/v1/groups/{g['id']}/members", headers=outsider.headers),
              await stack.client.post(f"/v1/groups/{g['id']}/passcode",
                                      headers=outsider.headers),
              await stack.access(outsider, customer.id),
              await stack.client.get(f"/v1/customers/{customer.id}/groups",
                                     headers=outsider.headers)]:
        assert r.status_code == 404, r.text

    r = await stack.client.put(f"/v1/groups/{g['id']}/owners/{co.id}", headers=owner.headers)
    assert r.status_code == 201
    r = await stack.client.put(f"/v1/groups/{g['id']}/owners/{co.id}", headers=owner.headers)
    assert r.status_code == 200  # already a co-owner
    via = (await stack.access(co, customer.id)).json()["via"]
    assert via[0]["reason"] == "co-owner of the group"
    r = await stack.client.get(f"/v1/customers/{customer.id}/groups", headers=co.headers)
    assert [i["group_id"] for i in r.json()["items"]] == [g["id"]]
    # a co-owner cannot remove the owner
    r = await stack.client.delete(f"/v1/groups/{g['id']}/owners/{owner.id}",
                                  headers=co.headers)
    assert r.status_code == 409
    r = await stack.client.delete(f"/v1/groups/{g['id']}/owners/{co.id}",
                                  headers=owner.headers)
    assert r.status_code == 204
    assert (await stack.access(co, customer.id)).status_code == 404
    r = await stack.client.put(f"/v1/groups/{g['id']}/owners/{uuid.uuid4()}",
                               headers=owner.headers)
    assert r.status_code == 404

    # customers may not use staff routes, staff may not join
    r = await stack.client.post("/v1/groups", headers=customer.headers, json={"name": "x"})
    assert r.status_code == 403
    r = await stack.client.post("/v1/join", headers=owner.headers,
                                json={"join_code": g["join_code"], "passcode": "x"})
    assert r.status_code == 403
    r = await stack.client.get(f"/v1/access/customers/{customer.id}")
    assert r.status_code == 401


async def test_subgroups_nest_take_parent_members_and_removal_cascades(stack: Stack) -> None:
    owner = await stack.new_staff("owner4")
    sub_owner = await stack.new_staff("subowner4")
    a = await stack.new_customer(owner, "Ann", "Alpha")
    b = await stack.new_customer(owner, "Ben", "Beta")
    outsider_customer = await stack.known_customer("Zed", "Zulu")
    root = await stack.new_group(owner, "Cohort")
    for c in (a, b):
        await stack.client.post("/v1/join", headers=c.headers, json={
            "join_code": root["join_code"], "passcode": root["passcode"]})

    chain = [root]
    for depth in range(2, 9):
        chain.append(await stack.new_group(owner, f"Level {depth}", uuid.UUID(chain[-1]["id"])))
    assert chain[1]["kind"] == "personal" and chain[1]["join_code"] is None
    r = await stack.client.post("/v1/groups", headers=owner.headers, json={
        "name": "Too deep", "parent_id": chain[-1]["id"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "parent_id"

    sub, subsub = chain[1], chain[2]
    # from the parent's members only
    r = await stack.client.post(f"/v1/groups/{sub['id']}/members", headers=owner.headers,
                                json={"customer_ids": [str(a.id), str(outsider_customer)]})
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "customer_ids[1]",
                                   "reason": "is not a member of the parent group"}]
    r = await stack.client.post(f"/v1/groups/{sub['id']}/members", headers=owner.headers,
                                json={"customer_ids": [str(a.id), str(b.id)]})
    assert r.status_code == 200 and len(r.json()["added"]) == 2
    r = await stack.client.post(f"/v1/groups/{subsub['id']}/members", headers=owner.headers,
                                json={"customer_ids": [str(a.id)]})
    assert r.status_code == 200
    # a co-owner of only the subgroup reaches its members, not the others
    await stack.client.put(f"/v1/groups/{subsub['id']}/owners/{sub_owner.id}",
                           headers=owner.headers)
    assert (await stack.access(sub_owner, a.id)).status_code == 200
    assert (await stack.access(sub_owner, b.id)).status_code == 404
    # staff add to a top group only customers they already reach
    r = await stack.client.post(f"/v1/groups/{root['id']}/members", headers=owner.headers,
                                json={"customer_ids": [str(outsider_customer)]})
    assert r.status_code == 422

    # removing from the top group removes from every subgroup below it
    r = await stack.client.delete(f"/v1/groups/{root['id']}/members/{a.id}",
                                  headers=owner.headers)
    assert r.status_code == 204
    assert await stack.pool.fetchval(
        "SELECT count(*) FROM memberships WHERE customer_id = $1", a.id) == 0
    assert (await stack.access(sub_owner, a.id)).status_code == 404
    removed = [e for e in await stack.outbox("MemberRemoved")
               if e["customer_id"] == str(a.id)]
    assert {e["group_id"] for e in removed} == {root["id"], sub["id"], subsub["id"]}
    r = await stack.client.delete(f"/v1/groups/{root['id']}/members/{a.id}",
                                  headers=owner.headers)
    assert r.status_code == 404

    # listing: the owner sees the whole tree with counts
    r = await stack.client.get("/v1/groups?kind=personal&limit=3", headers=owner.headers)
    assert r.status_code == 200 and len(r.json()["items"]) == 3 and r.json()["next_cursor"]
    seen = r.json()["items"]
    while r.json()["next_cursor"]:
        r = await stack.client.get(f"/v1/groups?kind=personal&limit=3&cursor="
                                   f"{r.json()['next_cursor']}", headers=owner.headers)
        seen += r.json()["items"]
    assert {i["id"] for i in seen} == {g["id"] for g in chain}
    counts = {i["id"]: i["member_count"] for i in seen}
    assert counts[root["id"]] == 1 and counts[sub["id"]] == 1


async def test_a_web_address_names_its_group_for_the_join_page(stack: Stack) -> None:
    owner = await stack.new_staff("owner9")
    customer = await stack.new_customer(owner, "Nia", "Cole")
    g = await stack.new_group(owner, "Forklift class")
    r = await stack.client.get(f"/v1/join/{g['join_code'].upper()}", headers=customer.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "Forklift class", "open": True}
    r = await stack.client.delete(f"/v1/groups/{g['id']}/passcode", headers=owner.headers)
    assert r.status_code == 204
    r = await stack.client.get(f"/v1/join/{g['join_code']}", headers=customer.headers)
    assert r.json() == {"name": "Forklift class", "open": False}
    for code in ("nosuchcode", "x", "../etc"):
        r = await stack.client.get(f"/v1/join/{code}", headers=customer.headers)
        assert r.status_code == 404, (code, r.text)
    # a customer's question: staff are refused
    r = await stack.client.get(f"/v1/join/{g['join_code']}", headers=owner.headers)
    assert r.status_code == 403
