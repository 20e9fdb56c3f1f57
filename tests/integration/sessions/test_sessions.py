"""Issue 12 A#10: each service is its own audience, a revoked session is refused by
every service within a bounded wait, and a token one service sends another cannot be
replayed against a third (identity, groups and enrollment over real HTTP)."""

from __future__ import annotations

import json
import time

import httpx
import jwt

from tests.integration.enrollment.conftest import bearer, form
from tests.integration.sessions.conftest import Stack, wait_row

# a revocation reaches every service within about a second; this only bounds the wait
DEADLINE = 15.0


def claims_of(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


async def refused_within(get: object, deadline: float = DEADLINE) -> httpx.Response:
    """Poll until the call answers 401; the last answer (the test asserts on it)."""
    assert callable(get)
    end = time.monotonic() + deadline
    while True:
        r: httpx.Response = await get()
        if r.status_code == 401 or time.monotonic() > end:
            return r
        await _pause()


async def _pause() -> None:
    import asyncio
    await asyncio.sleep(0.05)


async def test_a_token_is_refused_by_a_service_it_does_not_name(stack: Stack) -> None:
    staff = await stack.new_staff("rcase")
    full = claims_of(staff.token)
    assert {"identity", "enrollment", "groups"} <= set(full["aud"])  # type: ignore[arg-type]
    assert full["sid"]

    r = await stack.exchange(staff.token, "enrollment", "identity")
    assert r.status_code == 200, r.text
    narrow = r.json()["access_token"]
    assert sorted(claims_of(narrow)["aud"]) == ["enrollment", "identity"]  # type: ignore[arg-type]
    assert claims_of(narrow)["sid"] == full["sid"]

    assert (await stack.enrollment.get("/v1/programs", headers=bearer(narrow))).status_code == 200
    assert (await stack.ident.get("/v1/me", headers=bearer(narrow))).status_code == 200
    refused = await stack.groups.get("/v1/groups", headers=bearer(narrow))
    assert refused.status_code == 401, refused.text
    assert refused.headers["www-authenticate"] == "Bearer" and narrow not in refused.text
    # the full token is good at groups: it names groups
    assert (await stack.groups.get("/v1/groups", headers=staff.headers)).status_code == 200

    # a narrowed token never widens again, and nonsense is refused
    again = await stack.exchange(narrow, "groups")
    assert again.status_code == 422 and "not for groups" in again.text
    assert (await stack.exchange(narrow)).status_code == 422
    assert (await stack.exchange("not-a-token", "groups")).status_code == 401
    # a client credential's audience is the service of its scope: none of these
    assert (await stack.exchange(staff.token, "elsewhere")).status_code == 422


async def test_sign_out_is_refused_by_every_service_within_a_bound(stack: Stack) -> None:
    staff = await stack.new_staff("rcase")
    other = await stack.new_staff("jlee")  # another session: untouched
    for client, path in ((stack.enrollment, "/v1/programs"), (stack.groups, "/v1/groups"),
                         (stack.ident, "/v1/me")):
        assert (await client.get(path, headers=staff.headers)).status_code == 200
    narrowed = (await stack.exchange(staff.token, "groups")).json()["access_token"]

    out = await stack.ident.post("/v1/me/sign-out", headers=staff.headers)
    assert out.status_code == 204, out.text
    # identity itself at once; its refresh token is dead too
    assert (await stack.ident.get("/v1/me", headers=staff.headers)).status_code == 401
    r = await stack.ident.post("/v1/auth/token", data={
        "grant_type": "refresh_token", "refresh_token": staff.refresh_token})
    assert r.status_code == 401
    # the other services within the bound, the narrowed token as well
    for client, path, token in ((stack.enrollment, "/v1/programs", staff.token),
                                (stack.groups, "/v1/groups", staff.token),
                                (stack.groups, "/v1/groups", narrowed)):
        r = await refused_within(lambda c=client, p=path, t=token: c.get(p, headers=bearer(t)))
        assert r.status_code == 401, (path, r.text)
        assert r.json()["detail"] == "the session has ended"
    # nor can the ended session's token be narrowed any more
    assert (await stack.exchange(staff.token, "groups")).status_code == 401
    # signing out twice: the session has ended already
    assert (await stack.ident.post("/v1/me/sign-out", headers=staff.headers)).status_code == 401
    # another session of anyone is untouched
    assert (await stack.groups.get("/v1/groups", headers=other.headers)).status_code == 200
    assert (await stack.enrollment.get("/v1/programs",
                                       headers=other.headers)).status_code == 200

    # what identity told the others, and each service's own record of it
    rows = await stack.identity_pool.fetch(
        "SELECT value FROM outbox WHERE event_type = 'SessionRevoked'")
    payloads = [json.loads(r["value"])["payload"] for r in rows]
    sid = claims_of(staff.token)["sid"]
    assert [(p["session_id"], p["account_id"], p["reason"]) for p in payloads] == [
        (sid, str(staff.id), "sign_out")]
    for pool in (stack.groups_pool, stack.enrollment_pool, stack.identity_pool):
        await wait_row(pool, "SELECT true FROM revoked_sessions WHERE session_id = $1::uuid",
                       sid)


async def test_a_password_change_ends_every_session_everywhere(stack: Stack) -> None:
    staff = await stack.new_staff("rcase")
    second = await stack.sign_in("rcase")  # the same person signed in elsewhere
    r = await stack.ident.post("/v1/me/password", headers=staff.headers, json={
        "current_password": "correct horse battery staple 42",
        "new_password": "an entirely new passphrase 7"})
    assert r.status_code == 204, r.text
    for token in (staff.token, second["access_token"]):
        r = await refused_within(lambda t=token: stack.groups.get("/v1/groups",
                                                                  headers=bearer(t)))
        assert r.status_code == 401
        r = await refused_within(lambda t=token: stack.enrollment.get("/v1/programs",
                                                                      headers=bearer(t)))
        assert r.status_code == 401
    reasons = await stack.identity_pool.fetch(
        "SELECT value FROM outbox WHERE event_type = 'SessionRevoked'")
    assert {json.loads(r["value"])["payload"]["reason"] for r in reasons} == {
        "password_changed"}
    assert len(reasons) == 2


async def test_a_token_sent_between_services_cannot_be_replayed_to_a_third(
    stack: Stack,
) -> None:
    # enrollment -> identity: Add Customer's step 1 asks identity's matcher
    worker = await stack.reentry_worker()
    r = await stack.enrollment.post("/v1/returning-citizens/matches", json=form(),
                                    headers=worker.headers)
    assert r.status_code == 200, r.text
    sent = [s for s in stack.to_identity if s.path == "/v1/matches"]
    assert sent, "enrollment asked identity nothing"
    for s in sent:
        assert s.token != worker.token
        c = claims_of(s.token)
        assert c["aud"] == ["identity"] and c["sid"] == claims_of(worker.token)["sid"]
        assert c["sub"] == str(worker.id)
        # identity (had it kept the token) cannot use it at groups or enrollment
        assert (await stack.groups.get("/v1/groups",
                                       headers=bearer(s.token))).status_code == 401
        assert (await stack.enrollment.get("/v1/programs",
                                           headers=bearer(s.token))).status_code == 401
        assert (await stack.exchange(s.token, "groups")).status_code == 422

    # identity -> groups: who reaches a customer another staff member created
    creator = await stack.new_staff("creator1", "reentry")
    other = await stack.new_staff("jlee")
    made = await stack.ident.post("/v1/customers", headers=creator.headers, json={
        "first_name": "Ana", "last_name": "Diaz", "date_of_birth": "1990-02-03"})
    assert made.status_code == 201, made.text
    hidden = await stack.ident.get(f"/v1/customers/{made.json()['id']}",
                                   headers=other.headers)
    assert hidden.status_code == 404, hidden.text  # groups said no
    asked = [s for s in stack.to_groups if s.path.startswith("/v1/access/customers/")]
    assert asked, "identity asked groups nothing"
    for s in asked:
        c = claims_of(s.token)
        assert c["aud"] == ["groups"] and c["sub"] == str(other.id)
        # groups cannot replay it against identity or enrollment, nor widen it
        assert (await stack.ident.get("/v1/me", headers=bearer(s.token))).status_code == 401
        assert (await stack.enrollment.get("/v1/programs",
                                           headers=bearer(s.token))).status_code == 401
        assert (await stack.exchange(s.token, "identity")).status_code == 422
        # and at groups it is the staff member's own, still good
        assert (await stack.groups.get("/v1/groups",
                                       headers=bearer(s.token))).status_code == 200
