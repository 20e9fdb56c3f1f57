"""The inbox: a customer's own items only, newest first, paged; bad input gets a 4xx."""

from __future__ import annotations

import uuid

from tests.integration.notify.conftest import NotifyStack
from tests.integration.notify.test_failures import direct


async def test_a_customer_reads_only_their_own_inbox(stack: NotifyStack) -> None:
    ann, bob = await stack.customer("ann"), await stack.customer("bob", email=False)
    staff = stack.staff()
    await direct(stack, ann, staff, subject="For Ann")
    bob_msg = await stack.publish_direct(bob, staff, subject="For Bob")

    ann_items = (await stack.client.get("/v1/inbox", headers=ann.headers)).json()["items"]
    bob_items = (await stack.client.get("/v1/inbox", headers=bob.headers)).json()["items"]
    assert [i["subject"] for i in ann_items] == ["For Ann"]
    assert [i["subject"] for i in bob_items] == ["For Bob"]
    assert bob_items[0]["message_id"] == str(bob_msg)

    # bob cannot mark ann's item read, nor learn that it exists
    r = await stack.client.post(f"/v1/inbox/{ann_items[0]['id']}/read", headers=bob.headers)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    again = (await stack.client.get("/v1/inbox", headers=ann.headers)).json()
    assert again["unread"] == 1 and again["items"][0]["read_at"] is None

    r = await stack.client.post(f"/v1/inbox/{ann_items[0]['id']}/read", headers=ann.headers)
    assert r.status_code == 200, r.text
    assert r.json()["read_at"] is not None
    # reading twice keeps the first time
    r2 = await stack.client.post(f"/v1/inbox/{ann_items[0]['id']}/read", headers=ann.headers)
    assert r2.json()["read_at"] == r.json()["read_at"]
    assert (await stack.client.get("/v1/inbox", headers=ann.headers)).json()["unread"] == 0


async def test_inbox_is_newest_first_and_paged(stack: NotifyStack) -> None:
    ann = await stack.customer("ann", email=False)
    staff = stack.staff()
    for n in range(5):
        await stack.publish_direct(ann, staff, subject=f"note {n}")
        stack.later(minutes=1)
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await stack.client.get("/v1/inbox", params=params, headers=ann.headers)).json()
        assert page["unread"] == 5
        seen += [i["subject"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"note {n}" for n in (4, 3, 2, 1, 0)]


async def test_inbox_refuses_bad_input_and_the_wrong_callers(stack: NotifyStack) -> None:
    ann = await stack.customer("ann", email=False)
    staff = stack.staff("admin")
    assert (await stack.client.get("/v1/inbox")).status_code == 401
    assert (await stack.client.get("/v1/inbox", headers=staff.headers)).status_code == 403
    forged = {"Authorization": "Bearer not-a-token"}
    assert (await stack.client.get("/v1/inbox", headers=forged)).status_code == 401
    for params in ({"cursor": "garbage!"}, {"limit": 0}, {"limit": 1000}):
        r = await stack.client.get("/v1/inbox", params=params, headers=ann.headers)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["errors"][0]["field"] in ("cursor", "limit")
    r = await stack.client.post(f"/v1/inbox/{uuid.uuid4()}/read", headers=ann.headers)
    assert r.status_code == 404
    r = await stack.client.post("/v1/inbox/not-a-uuid/read", headers=ann.headers)
    assert r.status_code == 422


async def test_a_direct_messages_status_is_for_the_sender_and_admins_only(
    stack: NotifyStack,
) -> None:
    ann = await stack.customer("ann")
    sender, other, admin = stack.staff(), stack.staff(), stack.staff("admin")
    mid = await direct(stack, ann, sender)
    assert (await stack.client.get(f"/v1/messages/{mid}", headers=sender.headers)
            ).status_code == 200
    assert (await stack.client.get(f"/v1/messages/{mid}", headers=admin.headers)
            ).status_code == 200
    for path in (f"/v1/messages/{mid}", f"/v1/messages/{mid}/deliveries",
                 f"/v1/messages/{uuid.uuid4()}"):
        assert (await stack.client.get(path, headers=other.headers)).status_code == 404, path
    assert (await stack.client.get(f"/v1/messages/{mid}", headers=ann.headers)
            ).status_code == 403
    r = await stack.client.get(f"/v1/messages/{mid}/deliveries", params={"status": "lost"},
                               headers=sender.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "status"
    r = await stack.client.get(f"/v1/messages/{mid}/deliveries", params={"cursor": "x"},
                               headers=sender.headers)
    assert r.status_code == 422

    # deliveries paged by cursor, filtered by status ('queued' includes 'sending')
    page1 = (await stack.client.get(f"/v1/messages/{mid}/deliveries", params={"limit": 1},
                                    headers=sender.headers)).json()
    page2 = (await stack.client.get(
        f"/v1/messages/{mid}/deliveries",
        params={"limit": 1, "cursor": page1["next_cursor"]}, headers=sender.headers)).json()
    assert [i["channel"] for i in page1["items"] + page2["items"]] == ["inbox", "email"]
    assert page2["next_cursor"] is None
    queued = (await stack.client.get(f"/v1/messages/{mid}/deliveries",
                                     params={"status": "queued"}, headers=sender.headers)
              ).json()["items"]
    assert [i["channel"] for i in queued] == ["email"]
