"""identity answers for a customer only to staff who reach them (groups' rule, asked
through the kit's helper over HTTP): the creator at once, others through a group,
everyone else 404, and 503 (never a silent allow) when groups cannot be asked."""

from __future__ import annotations

from tests.integration.groups.conftest import Stack


async def test_identity_shows_a_customer_only_to_staff_who_reach_them(stack: Stack) -> None:
    creator = await stack.new_staff("rcase", "reentry")
    other = await stack.new_staff("jlee")
    customer = await stack.new_customer(creator)
    path = f"/v1/customers/{customer.id}"

    # the staff member who created the account reaches it at once
    assert (await stack.ident.get(path, headers=creator.headers)).status_code == 200
    # anyone else: 404, the same as a customer that does not exist; nothing shown
    hidden = await stack.ident.get(path, headers=other.headers)
    assert hidden.status_code == 404 and customer.username not in hidden.text
    reset = await stack.ident.post(f"{path}/password-reset", headers=other.headers)
    assert reset.status_code == 404
    assert "temporary_password" not in reset.text

    # a personal group the other staff member owns, the customer joined: reached
    group = await stack.new_group(other)
    joined = await stack.client.post("/v1/join", headers=customer.headers, json={
        "join_code": group["join_code"], "passcode": group["passcode"]})
    assert joined.status_code == 200, joined.text
    seen = await stack.ident.get(path, headers=other.headers)
    assert seen.status_code == 200 and seen.json()["username"] == customer.username
    reset = await stack.ident.post(f"{path}/password-reset", headers=other.headers)
    assert reset.status_code == 200 and reset.json()["temporary_password"]


async def test_identity_answers_503_when_groups_cannot_be_asked(stack: Stack) -> None:
    creator = await stack.new_staff("rcase", "reentry")
    other = await stack.new_staff("jlee")
    customer = await stack.new_customer(creator)
    assert stack.groups_server is not None
    await stack.groups_server.stop()  # groups is down: connections are refused
    r = await stack.ident.get(f"/v1/customers/{customer.id}", headers=other.headers)
    assert r.status_code == 503, r.text
    assert r.json()["type"].endswith("/access-unavailable") and r.headers["retry-after"]
    assert customer.username not in r.text
    r = await stack.ident.post(f"/v1/customers/{customer.id}/password-reset",
                               headers=other.headers)
    assert r.status_code == 503
    # the creator is known to identity itself: still answered
    assert (await stack.ident.get(f"/v1/customers/{customer.id}",
                                  headers=creator.headers)).status_code == 200
