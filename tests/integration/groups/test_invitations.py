"""Invitations to customers and email addresses: accept, decline, expire, resend,
revoke, duplicates, the board, and the email that belongs to an account later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from groups.deps import Deps
from shared.schemas.identity import CustomerAccountUpdated
from shared.servicekit.clock import FixedClock
from tests.integration.groups.conftest import Stack


async def test_invite_accept_decline_duplicates_and_board(stack: Stack) -> None:
    owner = await stack.new_staff("owner7")
    a = await stack.new_customer(owner, "Ann", "Invitee")           # no email
    b = await stack.new_customer(owner, "Bob", "Invitee", email="bob@example.org")
    g = await stack.new_group(owner, "Job club")
    gid = g["id"]
    r = await stack.client.post(f"/v1/groups/{gid}/invitations", headers=owner.headers, json={
        "customer_ids": [str(a.id)], "emails": ["Bob@Example.org", "new@example.org"]})
    assert r.status_code == 201, r.text
    items = r.json()["items"]
    assert [i["status"] for i in items] == ["pending"] * 3
    assert items[0]["customer_id"] == str(a.id) and items[1]["email"] == "bob@example.org"
    sent = await stack.outbox("InvitationSent")
    assert len(sent) == 3 and all(s["join_url"].endswith(s["invitation_id"]) for s in sent)
    assert sent[0]["join_url"].startswith(f"http://127.0.0.1:8100/join/{g['join_code']}")

    # asking again answers, it does not duplicate
    r = await stack.client.post(f"/v1/groups/{gid}/invitations", headers=owner.headers, json={
        "customer_ids": [str(a.id)], "emails": ["bob@example.org"]})
    assert [i["status"] for i in r.json()["items"]] == ["already_invited"] * 2
    assert len(await stack.outbox("InvitationSent")) == 3

    # each sees their own (b through the email), a accepts, b declines
    r = await stack.client.get("/v1/me/invitations", headers=a.headers)
    [mine] = r.json()["items"]
    assert mine["group_name"] == "Job club"
    r = await stack.client.get("/v1/me/invitations", headers=b.headers)
    [bobs] = r.json()["items"]
    # another customer cannot accept someone else's invitation
    r = await stack.client.post(f"/v1/invitations/{mine['id']}/accept", headers=b.headers)
    assert r.status_code == 404
    r = await stack.client.post(f"/v1/invitations/{mine['id']}/accept", headers=a.headers)
    assert r.status_code == 200 and r.json()["group_id"] == gid
    r = await stack.client.post(f"/v1/invitations/{mine['id']}/accept", headers=a.headers)
    assert r.status_code == 409
    r = await stack.client.post(f"/v1/invitations/{bobs['id']}/decline", headers=b.headers)
    assert r.status_code == 200 and r.json()["status"] == "declined"
    assert (await stack.access(owner, a.id)).json()["via"][0]["name"] == "Job club"
    r = await stack.client.get(f"/v1/groups/{gid}/members?source=invitation",
                               headers=owner.headers)
    assert [m["customer_id"] for m in r.json()["items"]] == [str(a.id)]
    assert len(await stack.outbox("InvitationAccepted")) == 1
    assert len(await stack.outbox("InvitationDeclined")) == 1

    # inviting a member says so
    r = await stack.client.post(f"/v1/groups/{gid}/invitations", headers=owner.headers,
                                json={"customer_ids": [str(a.id)]})
    assert r.json()["items"][0]["status"] == "already_member"

    # the board, by status
    board = (await stack.client.get(f"/v1/groups/{gid}/invitations",
                                    headers=owner.headers)).json()["items"]
    assert sorted(i["status"] for i in board) == ["accepted", "declined", "pending"]
    assert all(i["created_at"] and i["expires_at"] for i in board)
    r = await stack.client.get(f"/v1/groups/{gid}/invitations?status=accepted",
                               headers=owner.headers)
    assert [i["customer_id"] for i in r.json()["items"]] == [str(a.id)]
    assert r.json()["items"][0]["responded_at"]

    # the email invitation belongs to whoever gets that address later
    pending = next(i for i in board if i["status"] == "pending")
    c = await stack.new_customer(owner, "Cy", "Later")
    await stack.emit_and_wait("identity", CustomerAccountUpdated(
        account_id=c.id, email="NEW@example.org"))
    r = await stack.client.get("/v1/me/invitations", headers=c.headers)
    assert [i["id"] for i in r.json()["items"]] == [pending["id"]]

    # revoke: gone from the customer's list, a revoked one cannot be accepted
    r = await stack.client.post(f"/v1/invitations/{pending['id']}/revoke",
                                headers=owner.headers)
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    assert (await stack.client.get("/v1/me/invitations", headers=c.headers)).json()["items"] == []
    r = await stack.client.post(f"/v1/invitations/{pending['id']}/accept", headers=c.headers)
    assert r.status_code == 409
    r = await stack.client.post(f"/v1/invitations/{pending['id']}/revoke",
                                headers=owner.headers)
    assert r.status_code == 409
    # only owners run the board
    outsider = await stack.new_staff("out7")
    r = await stack.client.get(f"/v1/groups/{gid}/invitations", headers=outsider.headers)
    assert r.status_code == 404


async def test_expire_and_resend(stack: Stack) -> None:
    owner = await stack.new_staff("owner8")
    a = await stack.new_customer(owner, "Eve", "Expiry")
    g = await stack.new_group(owner)
    runtime = stack.app.state.runtime
    clock = FixedClock(datetime.now(UTC))
    deps: Deps = runtime.deps
    runtime.deps = Deps(clock, deps.outbox, deps.settings, deps.messages_waiting)
    r = await stack.client.post(f"/v1/groups/{g['id']}/invitations", headers=owner.headers,
                                json={"customer_ids": [str(a.id)]})
    [inv] = r.json()["items"]
    clock.advance(timedelta(days=14, seconds=1))
    assert (await stack.client.get("/v1/me/invitations", headers=a.headers)).json()["items"] == []
    r = await stack.client.post(f"/v1/invitations/{inv['id']}/accept", headers=a.headers)
    assert r.status_code == 409 and r.json()["type"].endswith("invitation-expired")
    r = await stack.client.get(f"/v1/groups/{g['id']}/invitations?status=expired",
                               headers=owner.headers)
    assert [i["id"] for i in r.json()["items"]] == [inv["id"]]

    r = await stack.client.post(f"/v1/invitations/{inv['id']}/resend", headers=owner.headers)
    assert r.status_code == 200 and r.json()["status"] == "pending"
    assert len(await stack.outbox("InvitationSent")) == 2
    r = await stack.client.post(f"/v1/invitations/{inv['id']}/accept", headers=a.headers)
    assert r.status_code == 200
    r = await stack.client.post(f"/v1/invitations/{inv['id']}/resend", headers=owner.headers)
    assert r.status_code == 409
