"""Group and direct messages reach customers by inbox and email, once each."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from shared.schemas.envelope import Envelope
from shared.schemas.groups import DirectMessageSent, GroupMessageRequested
from tests.integration.notify.conftest import NotifyStack
from tests.support.kit import wait_until


def group_message(stack: NotifyStack, recipients: list[uuid.UUID], *, sender: uuid.UUID,
                  subject: str = "Job fair on Friday", body: str = "Bring your resume.",
                  message_id: uuid.UUID | None = None, chunk: tuple[int, int] = (0, 1),
                  ) -> GroupMessageRequested:
    return GroupMessageRequested(
        message_id=message_id or uuid.uuid4(), group_id=uuid.uuid4(), staff_id=sender,
        subject=subject, body=body, recipient_ids=recipients, chunk_index=chunk[0],
        chunk_count=chunk[1])


async def test_group_message_goes_to_inbox_for_all_and_email_for_those_with_one(
    stack: NotifyStack,
) -> None:
    ann = await stack.customer("ann")
    ray = await stack.customer("ray", email=False)  # a returning citizen with no email
    staff = stack.staff()
    msg_id = uuid.uuid4()
    # recipients in two chunks, as groups sends them
    await stack.publish(group_message(stack, [ann.id], sender=staff.id, message_id=msg_id,
                                      chunk=(0, 2)))
    await stack.publish(group_message(stack, [ray.id], sender=staff.id, message_id=msg_id,
                                      chunk=(1, 2)))
    await stack.wait_for("SELECT count(*) = 3 FROM deliveries WHERE message_id = $1", msg_id)

    rows = {(str(r["customer_id"]), r["channel"]): r for r in await stack.deliveries(msg_id)}
    assert set(rows) == {(str(ann.id), "inbox"), (str(ann.id), "email"), (str(ray.id), "inbox")}
    assert rows[(str(ann.id), "email")]["status"] == "queued"
    assert rows[(str(ray.id), "inbox")]["status"] == "sent"

    # the inbox is there before any email is sent
    for person in (ann, ray):
        r = await stack.client.get("/v1/inbox", headers=person.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["unread"] == 1
        [item] = body["items"]
        assert item["message_id"] == str(msg_id)
        assert item["kind"] == "group"
        assert item["subject"] == "Job fair on Friday"
        assert item["body"] == "Bring your resume."
        assert item["read_at"] is None
        assert set(item) == {"id", "message_id", "kind", "subject", "body", "received_at",
                             "read_at"}

    await stack.drain()
    assert ann.email is not None
    [mail] = stack.mail_to(ann.email)
    assert mail.subject == "Job fair on Friday"
    row = (await stack.deliveries(msg_id))[1]
    assert row["status"] == "sent" and row["attempts"] == 1
    assert row["last_reply"].startswith("250")

    staff_view = await stack.client.get(f"/v1/messages/{msg_id}", headers=staff.headers)
    assert staff_view.status_code == 200, staff_view.text
    assert staff_view.json() == {
        "message_id": str(msg_id), "kind": "group", "total": 3,
        "counts": {"queued": 0, "sent": 3, "deferred": 0, "failed": 0, "suppressed": 0},
    }
    # MessageDelivered for each delivery, through the outbox
    types = await stack.pool.fetch(
        "SELECT value FROM outbox WHERE event_type = 'MessageDelivered'")
    delivered = [Envelope.from_bytes(bytes(r["value"])).payload for r in types]
    mine = [(p["customer_id"], p["channel"]) for p in delivered if p["message_id"] == str(msg_id)]
    assert sorted(mine) == sorted([(str(ann.id), "inbox"), (str(ann.id), "email"),
                                   (str(ray.id), "inbox")])


async def test_a_redelivered_event_sends_nothing_twice(stack: NotifyStack) -> None:
    ann = await stack.customer("ann")
    staff = stack.staff()
    event = DirectMessageSent(message_id=uuid.uuid4(), staff_id=staff.id, customer_id=ann.id,
                              subject="Your appointment", body="Tuesday at 10.")
    env = await stack.publish(event)
    await stack.publish(event, envelope=env)  # the same envelope again (at-least-once)
    # and the same message under a new event id (a producer that retried); same key, same
    # partition: once it is applied, the copies before it were too
    last = await stack.publish(event)
    await stack.wait_for("SELECT true FROM inbox WHERE consumer = 'notify' AND event_id = $1",
                         last.event_id)
    assert len(await stack.deliveries(event.message_id)) == 2
    await stack.drain()
    await stack.drain()
    assert ann.email is not None
    assert len(stack.mail_to(ann.email)) == 1
    assert await stack.pool.fetchval(
        "SELECT count(*) FROM inbox_items WHERE message_id = $1", event.message_id) == 1


async def test_recipient_unknown_to_the_directory_gets_the_inbox(stack: NotifyStack) -> None:
    stranger = uuid.uuid4()
    staff = stack.staff()
    event = group_message(stack, [stranger], sender=staff.id)
    await stack.publish(event)
    await stack.wait_for("SELECT count(*) = 1 FROM deliveries WHERE message_id = $1",
                         event.message_id)
    [row] = await stack.deliveries(event.message_id)
    assert (row["channel"], row["status"]) == ("inbox", "sent")
    r = await stack.client.get("/v1/inbox", headers=stack.customer_token(stranger))
    assert [i["message_id"] for i in r.json()["items"]] == [str(event.message_id)]


async def test_the_running_worker_sends_as_messages_arrive(stack: NotifyStack) -> None:
    ann = await stack.customer("ann")
    assert ann.email is not None
    task = asyncio.create_task(stack.worker().run())
    try:
        mid = await stack.publish_direct(ann, stack.staff(), subject="While running")

        async def sent() -> bool:
            return bool(await stack.pool.fetchval(
                "SELECT status = 'sent' FROM deliveries WHERE message_id = $1"
                " AND channel = 'email'", mid))
        await wait_until(sent, timeout=30, interval=0.02)
        assert [m.subject for m in stack.mail_to(ann.email)] == ["While running"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
