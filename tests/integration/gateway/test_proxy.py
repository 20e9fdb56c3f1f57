"""`/api/<service>/...` through the real gateway to the real services: bodies both
ways, request ids, the 503 naming a service that is down, rate limits on the anonymous
doors, the body cap; and the pages' guards (CSRF, sign-in required)."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.browser.conftest import GatewayStack


async def test_requests_and_answers_pass_through_with_their_request_id(
    gateway_stack: GatewayStack,
) -> None:
    stack = gateway_stack
    staff = await stack.new_staff("pat", "admin")
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as gw:
        r = await gw.get("/api/identity/.well-known/jwks.json",
                         headers={"X-Request-ID": "trace-abc-123"})
        assert r.status_code == 200 and r.json()["keys"]
        assert r.headers["x-request-id"] == "trace-abc-123"
        assert r.headers.get_list("date") and len(r.headers.get_list("date")) == 1
        # HEAD is passed on and answered without waiting for a body (identity's own
        # answer: its routes take GET only)
        head = await gw.head("/api/identity/.well-known/jwks.json")
        assert head.status_code in (200, 405) and head.content == b""
        token = await gw.post("/api/identity/v1/auth/token",
                              data={"username": "pat", "password": "wrong"})
        assert token.status_code == 401
        r = await gw.get("/api/enrollment/v1/programs?limit=5",
                         headers={"Authorization": f"Bearer {staff.token}"})
        assert r.status_code == 200, r.text
        assert any(p["code"] == "returning-citizens" for p in r.json()["items"])
        r = await gw.get("/api/enrollment/v1/programs")  # no token: the service's own 401
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_a_service_that_is_down_is_named_in_a_503(gateway_stack: GatewayStack) -> None:
    async with httpx.AsyncClient(base_url=gateway_stack.url, timeout=30) as gw:
        r = await gw.get("/api/groups/v1/groups")
        assert r.status_code == 503
        assert r.json()["service"] == "groups"
        assert "groups is unavailable" in r.json()["detail"]
        assert r.headers["retry-after"]
        assert (await gw.get("/api/nothing/v1/x")).status_code == 404


async def test_anonymous_doors_are_rate_limited_per_client(gateway_stack: GatewayStack) -> None:
    # the limit counts per minute of the clock: 31 tries that straddle a minute's end
    # would be counted in two windows, so start them early in a minute
    left = 60 - time.time() % 60
    if left < 25:
        await asyncio.sleep(left + 0.1)
    async with httpx.AsyncClient(base_url=gateway_stack.url, timeout=30) as gw:
        answers = [await gw.post("/api/identity/v1/password-recovery",
                                 json={"email": "nobody@example.com"}) for _ in range(31)]
        assert [a.status_code for a in answers[:30]] == [202] * 30
        assert answers[30].status_code == 429
        assert int(answers[30].headers["retry-after"]) >= 1
        # reading keys is not a door: not counted
        assert (await gw.get("/api/identity/.well-known/jwks.json")).status_code == 200


async def test_a_body_over_the_cap_is_refused_before_it_is_forwarded(
    gateway_stack: GatewayStack,
) -> None:
    async with httpx.AsyncClient(base_url=gateway_stack.url, timeout=30) as gw:
        r = await gw.post("/api/enrollment/v1/returning-citizens/matches",
                          content=b"x" * (1024 * 1024 + 1),
                          headers={"content-type": "application/json"})
        assert r.status_code == 413

        async def chunks():  # no Content-Length: counted as it streams
            for _ in range(20):
                yield b"y" * 65536
        r = await gw.post("/api/enrollment/v1/returning-citizens/matches", content=chunks())
        assert r.status_code == 413


async def test_pages_need_a_session_and_forms_their_csrf_token(
    gateway_stack: GatewayStack,
) -> None:
    await gateway_stack.new_staff("pat", "reentry")
    async with httpx.AsyncClient(base_url=gateway_stack.url, timeout=30) as gw:
        for path in ("/console", "/console/returning-citizens", "/me", "/account/password"):
            r = await gw.get(path)
            assert r.status_code == 303 and r.headers["location"] == "/signin", path
        # a sign-in without the form's token (another site posting it) is refused
        r = await gw.post("/signin", data={"username": "pat",
                                           "password": "correct horse battery staple 42"})
        assert r.status_code == 403 and "csc_session" not in r.cookies
        page = await gw.get("/signin")
        assert page.headers["cache-control"] == "no-store"
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        # Secure cookies: httpx keeps them for https only, so they are sent by hand here
        anon = {"cookie": f"csc_csrf={page.cookies['csc_csrf']}"}
        gw.cookies.clear()
        r = await gw.post("/signin", headers=anon, data={
            "username": "pat", "csrf_token": token,
            "password": "correct horse battery staple 42"})
        assert r.status_code == 303 and r.headers["location"] == "/console"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie
        signed = {"cookie": f"csc_session={r.cookies['csc_session']}"}
        gw.cookies.clear()
        console = await gw.get("/console", headers=signed)
        assert console.status_code == 200 and "Signed in as" in console.text
        # the cookie is a random handle: identity's tokens never reach the browser
        assert "eyJ" not in cookie and "eyJ" not in console.text
        r = await gw.post("/signout", headers=signed, data={"csrf_token": "not-it"})
        assert r.status_code == 403
        assert (await gw.get("/console", headers=signed)).status_code == 200
