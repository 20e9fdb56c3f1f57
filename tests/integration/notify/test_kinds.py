"""Invitations, password notices, merged accounts, and hostile text."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from shared.devstack.smtp_sink import read_message
from shared.schemas.groups import InvitationSent
from shared.schemas.identity import (
    CustomerAccountCreated,
    CustomerAccountsMerged,
    CustomerAccountsUnmerged,
    CustomerAccountUpdated,
    PasswordRecoveryRequested,
    PasswordResetByStaff,
)
from shared.servicekit.seal import DEV_SEAL_KEYS, Sealer, recovery_context
from tests.integration.notify.conftest import NotifyStack, Person
from tests.integration.notify.test_failures import direct


def invitation(stack: NotifyStack, *, customer_id: uuid.UUID | None = None,
               email: str | None = None) -> InvitationSent:
    return InvitationSent(
        invitation_id=uuid.uuid4(), group_id=uuid.uuid4(), staff_id=uuid.uuid4(),
        customer_id=customer_id, email=email, join_url="https://portal.example/join/abc123",
        expires_at=stack.clock.now() + timedelta(days=14))


async def channels(stack: NotifyStack, message_id: uuid.UUID) -> list[tuple[str, str]]:
    await stack.wait_for("SELECT true FROM deliveries WHERE message_id = $1", message_id)
    return sorted((r["channel"], r["status"]) for r in await stack.deliveries(message_id))


async def test_invitation_to_an_address_without_account_is_email_only(
    stack: NotifyStack,
) -> None:
    address = stack.address("newcomer")
    inv = invitation(stack, email=address)
    await stack.publish(inv)
    assert await channels(stack, inv.invitation_id) == [("email", "queued")]
    await stack.drain()
    [mail] = stack.mail_to(address)
    text = read_message(stack.mail_dir, mail.id).get_body(preferencelist=("plain",))
    assert text is not None and "https://portal.example/join/abc123" in text.get_content()


async def test_invitation_to_an_account_uses_its_channels(stack: NotifyStack) -> None:
    ann = await stack.customer("ann")
    ray = await stack.customer("ray", email=False)
    by_id = invitation(stack, customer_id=ray.id)
    assert ann.email is not None
    by_email = invitation(stack, email=ann.email.upper())  # the account's address
    await stack.publish(by_id)
    await stack.publish(by_email)
    assert await channels(stack, by_id.invitation_id) == [("inbox", "sent")]
    assert await channels(stack, by_email.invitation_id) == [("email", "queued"),
                                                              ("inbox", "sent")]
    items = (await stack.client.get("/v1/inbox", headers=ray.headers)).json()["items"]
    assert items[0]["kind"] == "invitation"
    assert "https://portal.example/join/abc123" in items[0]["body"]


async def test_password_reset_is_an_inbox_notice_without_the_password(
    stack: NotifyStack,
) -> None:
    ann = await stack.customer("ann")
    env = await stack.publish(PasswordResetByStaff(account_id=ann.id, staff_id=uuid.uuid4()),
                              producer="identity")
    assert await channels(stack, env.event_id) == [("inbox", "sent")]
    [item] = (await stack.client.get("/v1/inbox", headers=ann.headers)).json()["items"]
    assert item["kind"] == "password_reset"
    assert "reset your password" in item["body"]
    assert "password:" not in item["body"].lower()


def plain_text(stack: NotifyStack, mail_id: str) -> str:
    part = read_message(stack.mail_dir, mail_id).get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def recovery(stack: NotifyStack, to: Person, token: str, *,
             for_account: uuid.UUID | None = None) -> PasswordRecoveryRequested:
    """identity's event: the link sealed for notify (the test settings' development key)."""
    assert to.email is not None
    link = f"https://portal.example/recover?token={token}"
    return PasswordRecoveryRequested(
        account_id=to.id, email=to.email, expires_at=stack.clock.now() + timedelta(minutes=30),
        sealed_link=Sealer.from_spec(DEV_SEAL_KEYS).seal(
            link, recovery_context(for_account or to.id)))


async def test_password_recovery_link_goes_by_email_only(stack: NotifyStack) -> None:
    ann = await stack.customer("ann")
    assert ann.email is not None
    token = "tok_" + uuid.uuid4().hex
    env = await stack.publish(recovery(stack, ann, token), producer="identity")
    assert await channels(stack, env.event_id) == [("email", "queued")]
    await stack.drain()
    [mail] = stack.mail_to(ann.email)
    assert mail.subject == "Reset your password"
    msg = read_message(stack.mail_dir, mail.id)
    html, text = (msg.get_body(preferencelist=(k,)) for k in ("html", "plain"))
    assert html is not None and text is not None
    assert f'href="https://portal.example/recover?token={token}"' in html.get_content()
    assert f"https://portal.example/recover?token={token}" in text.get_content()
    assert (await stack.client.get("/v1/inbox", headers=ann.headers)).json()["items"] == []


async def test_a_recovery_link_that_does_not_open_is_not_sent(stack: NotifyStack) -> None:
    """Sealed for another account (or with a key notify lacks): the handler fails, the
    event goes to the dead letters still sealed, nothing is sent; an event without a
    sealed link (an identity from before the seal) is skipped."""
    ann, bob = await stack.customer("ann"), await stack.customer("bob")
    assert ann.email is not None
    token = "tok_" + uuid.uuid4().hex
    bad = await stack.publish(recovery(stack, ann, token, for_account=bob.id),
                              producer="identity")
    bare = await stack.publish(PasswordRecoveryRequested(
        account_id=ann.id, email=ann.email, expires_at=stack.clock.now()),
        producer="identity")
    # a later event of the same account still flows
    good = await stack.publish(recovery(stack, ann, "tok_" + uuid.uuid4().hex),
                               producer="identity")
    await stack.wait_for("SELECT true FROM deliveries WHERE message_id = $1", good.event_id)
    await stack.wait_for("SELECT true FROM inbox WHERE event_id = $1", bare.event_id)
    assert await stack.pool.fetchval(
        "SELECT count(*) FROM messages WHERE id = ANY($1::uuid[])",
        [bad.event_id, bare.event_id]) == 0
    await stack.drain()
    [mail] = stack.mail_to(ann.email)
    assert token not in plain_text(stack, mail.id) and "/recover?token=tok_" in plain_text(
        stack, mail.id)


async def test_directory_follows_updates_and_merges(stack: NotifyStack) -> None:
    ann = await stack.customer("ann")
    dup = await stack.customer("anne", email=False)
    staff = stack.staff()
    await stack.publish_direct(dup, staff, subject="Before the merge")
    # the duplicate account is merged into ann's: its inbox moves, new messages follow
    await stack.publish(CustomerAccountsMerged(survivor_id=ann.id, merged_id=dup.id,
                                               by=staff.id), producer="identity")
    await stack.wait_for("SELECT true FROM customers WHERE id = $1 AND merged_into = $2",
                         dup.id, ann.id)
    stack.later(minutes=1)
    after = await stack.publish_direct(dup, staff, subject="After the merge")
    assert await channels(stack, after) == [("email", "queued"), ("inbox", "sent")]
    items = (await stack.client.get("/v1/inbox", headers=ann.headers)).json()["items"]
    assert [i["subject"] for i in items] == ["After the merge", "Before the merge"]
    assert (await stack.client.get("/v1/inbox", headers=dup.headers)).json()["items"] == []

    await stack.publish(CustomerAccountsUnmerged(survivor_id=ann.id, merged_id=dup.id,
                                                 by=staff.id), producer="identity")
    await stack.wait_for("SELECT true FROM customers WHERE id = $1 AND merged_into IS NULL",
                         dup.id)
    items = (await stack.client.get("/v1/inbox", headers=dup.headers)).json()["items"]
    assert [i["subject"] for i in items] == ["Before the merge"]

    # ann removes her email: from then on, inbox only
    await stack.publish(CustomerAccountUpdated(account_id=ann.id, email_removed=True),
                        producer="identity")
    await stack.wait_for("SELECT true FROM customers WHERE id = $1 AND email IS NULL", ann.id)
    later = await stack.publish_direct(ann, staff, subject="No email now")
    assert await channels(stack, later) == [("inbox", "sent")]


async def test_hostile_subject_and_body_are_escaped_and_add_no_header(
    stack: NotifyStack,
) -> None:
    cid = uuid.uuid4()
    address = stack.address("mallory")
    await stack.publish(CustomerAccountCreated(
        account_id=cid, username=f"m{stack.tag}", first_name="<img src=x onerror=alert(1)>",
        last_name="Doe", email=address, source="self"), producer="identity")
    await stack.wait_for("SELECT true FROM customers WHERE id = $1", cid)
    person = Person(cid, address, stack.customer_token(cid))
    subject = "Hello\r\nBcc: victim@evil.example\r\nX-Injected: yes"
    body = "<script>alert('x')</script>\n<b>bold</b> & \"quotes\""
    mid = await direct(stack, person, stack.staff(), subject=subject, body=body)
    await stack.drain()
    [mail] = stack.mail_to(address)
    assert mail.rcpt_tos == [address]  # no Bcc slipped into the envelope
    msg = read_message(stack.mail_dir, mail.id)
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert "\n" not in str(msg["Subject"]) and "\r" not in str(msg["Subject"])
    assert str(msg["Subject"]).startswith("Hello Bcc: victim@evil.example")
    assert msg["Message-ID"] and str(mid.hex) in str(msg["Message-ID"])
    html_part, text_part = (msg.get_body(preferencelist=(k,)) for k in ("html", "plain"))
    assert html_part is not None and text_part is not None
    html = html_part.get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt; &amp;" in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>alert('x')</script>" in text_part.get_content()  # plain text is text
    assert "Customer Support Center" in html and "do not reply" in html


async def test_recovery_token_stays_out_of_events_tables_and_staff_views(
    stack: NotifyStack, capsys: pytest.CaptureFixture[str],
) -> None:
    ann = await stack.customer("ann")
    assert ann.email is not None
    token = "tok_secret_" + uuid.uuid4().hex
    stack.sink.rules.defer, stack.sink.rules.defer_times = (ann.email,), 1
    env = await stack.publish(recovery(stack, ann, token), producer="identity")
    await stack.wait_for("SELECT true FROM deliveries WHERE message_id = $1", env.event_id)
    await stack.drain()  # deferred once: a MessageFailed with the server's reply
    stack.later(hours=1)
    await stack.drain()
    [mail] = stack.mail_to(ann.email)
    assert token in plain_text(stack, mail.id)  # the email has it: nothing else does
    events = await stack.pool.fetch(
        "SELECT value FROM outbox WHERE event_type IN ('MessageDelivered', 'MessageFailed')")
    assert len(events) == 2
    assert not any(token.encode() in bytes(r["value"]) for r in events)
    # no table of notify holds it: the message row keeps the link sealed again
    tables = await stack.pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    for t in tables:
        rows = await stack.pool.fetch(f'SELECT x::text AS row FROM "{t["table_name"]}" x')
        assert not [r["row"] for r in rows if token in r["row"]], t["table_name"]
    link = await stack.pool.fetchval("SELECT link FROM messages WHERE id = $1", env.event_id)
    assert link.startswith("v1.dev1.")
    admin = stack.staff("admin")
    r = await stack.client.get(f"/v1/messages/{env.event_id}/deliveries",
                               headers=admin.headers)
    assert r.status_code == 200 and token not in r.text
    assert token not in capsys.readouterr().out
