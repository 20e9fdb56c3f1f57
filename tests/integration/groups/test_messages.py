"""Messages: to a group with overlapping subgroups (each member once), narrowed to
some members, to one customer; a 100,000-member group in chunks well under 1 MB."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.groups.conftest import Stack
from tests.support.kit import wait_until


async def emitted(stack: Stack, message_id: str) -> list[dict[str, Any]]:
    async def done() -> bool:
        return not await stack.pool.fetchval(
            "SELECT true FROM message_chunks WHERE message_id = $1 AND emitted_at IS NULL",
            uuid.UUID(message_id))
    await wait_until(done, timeout=30, interval=0.05)
    return [e for e in await stack.outbox("GroupMessageRequested")
            if e["message_id"] == message_id]


async def test_overlapping_subgroups_reach_each_member_once(stack: Stack) -> None:
    owner = await stack.new_staff("owner9")
    outsider = await stack.new_staff("out9")
    people = [await stack.new_customer(owner, f"P{i}", "Member") for i in range(3)]
    g = await stack.new_group(owner, "Class")
    for p in people:
        await stack.client.post("/v1/join", headers=p.headers, json={
            "join_code": g["join_code"], "passcode": g["passcode"]})
    s1 = await stack.new_group(owner, "Morning", uuid.UUID(g["id"]))
    s2 = await stack.new_group(owner, "Evening", uuid.UUID(g["id"]))
    ids = [str(p.id) for p in people]
    for s in (s1, s2):  # people[0] is in both
        await stack.client.post(f"/v1/groups/{s['id']}/members", headers=owner.headers,
                                json={"customer_ids": ids[:2] if s is s1 else ids[:1]})

    r = await stack.client.post(f"/v1/groups/{g['id']}/messages", headers=owner.headers,
                                json={"subject": "Reminder", "body": "Bring your ID.",
                                      "include_subgroups": True})
    assert r.status_code == 202, r.text
    assert r.json()["recipients"] == 3
    [event] = await emitted(stack, r.json()["message_id"])
    assert sorted(event["recipient_ids"]) == sorted(ids)
    assert (event["chunk_index"], event["chunk_count"]) == (0, 1)
    assert event["subject"] == "Reminder" and event["staff_id"] == str(owner.id)

    # narrowed to the people who have not done it yet (non-members are ignored)
    r = await stack.client.post(f"/v1/groups/{s1['id']}/messages", headers=owner.headers,
                                json={"subject": "Nudge", "body": "Please sign.",
                                      "customer_ids": [ids[1], ids[2]]})
    assert r.json()["recipients"] == 1
    [event] = await emitted(stack, r.json()["message_id"])
    assert event["recipient_ids"] == [ids[1]]

    # recipients are fixed when sent: someone joining later is not added
    r = await stack.client.post(f"/v1/groups/{s1['id']}/messages", headers=owner.headers,
                                json={"subject": "s", "body": "b", "customer_ids": [ids[2]]})
    assert r.status_code == 409  # nobody to send to

    r = await stack.client.post(f"/v1/groups/{g['id']}/messages", headers=outsider.headers,
                                json={"subject": "s", "body": "b"})
    assert r.status_code == 404

    # a direct message to a reached customer, 404 for one not reached
    r = await stack.client.post(f"/v1/customers/{ids[0]}/messages", headers=owner.headers,
                                json={"subject": "Hello", "body": "See you Tuesday."})
    assert r.status_code == 202
    [dm] = await stack.outbox("DirectMessageSent")
    assert dm["message_id"] == r.json()["message_id"] and dm["customer_id"] == ids[0]
    r = await stack.client.post(f"/v1/customers/{ids[0]}/messages", headers=outsider.headers,
                                json={"subject": "Hello", "body": "x"})
    assert r.status_code == 404


@pytest.mark.slow  # 100,000 rows
async def test_a_100000_member_message_stays_well_under_1_mb_per_event(stack: Stack) -> None:
    owner = await stack.new_staff("owner10")
    g = await stack.new_group(owner, "Everyone")
    await stack.pool.execute(
        "INSERT INTO memberships (group_id, customer_id, source)"
        " SELECT $1, gen_random_uuid(), 'staff' FROM generate_series(1, 100000)",
        uuid.UUID(g["id"]))
    body = "Ä" * 20_000  # the longest body, two bytes a character
    r = await stack.client.post(f"/v1/groups/{g['id']}/messages", headers=owner.headers,
                                json={"subject": "S" * 200, "body": body})
    assert r.status_code == 202, r.text
    assert r.json()["recipients"] == 100_000
    events = await emitted(stack, r.json()["message_id"])
    assert len(events) == 20
    assert sorted(e["chunk_index"] for e in events) == list(range(20))
    assert {e["chunk_count"] for e in events} == {20}
    every = [i for e in events for i in e["recipient_ids"]]
    assert len(every) == len(set(every)) == 100_000
    sizes = await stack.pool.fetch(
        "SELECT octet_length(value) AS n FROM outbox WHERE event_type = 'GroupMessageRequested'")
    assert max(s["n"] for s in sizes) < 512 * 1024

    async def published() -> bool:
        return not await stack.pool.fetchval(
            "SELECT true FROM outbox WHERE event_type = 'GroupMessageRequested'"
            " AND published_at IS NULL")
    await wait_until(published, timeout=60)  # the broker took every chunk
