"""Access tokens: JwksVerifier against a fixed key set and against a JWKS
served over real HTTP, and the FastAPI dependencies that guard routes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from shared.servicekit.auth import (
    JwksVerifier,
    Principal,
    TokenError,
    require_customer,
    require_staff,
)
from shared.servicekit.http import PROBLEM_JSON, RequestIdMiddleware, install_problem_handlers
from tests.support.keys import TestSigner

ISSUER, AUDIENCE = "csc-identity", "groups"  # the verifying service


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def unb64json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def claims(signer: TestSigner, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": "s-1", "kind": "staff", "roles": ["planner"], "iss": signer.issuer,
        "aud": list(signer.audience), "iat": now, "exp": now + 600, "sid": "session-1",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def signer() -> TestSigner:
    return TestSigner()


@pytest.fixture
def verifier(signer: TestSigner) -> JwksVerifier:
    return JwksVerifier.from_jwks(signer.jwks(), issuer=ISSUER, audience=AUDIENCE)


# -- the verifier ------------------------------------------------------------------


async def test_valid_staff_token(signer: TestSigner, verifier: JwksVerifier) -> None:
    p = await verifier.verify(signer.token("staff-1", roles=["admin", "planner"]))
    assert p == Principal("staff-1", "staff", frozenset({"admin", "planner"}))
    assert p.is_staff
    assert p.claims["iss"] == ISSUER


async def test_valid_customer_token(signer: TestSigner, verifier: JwksVerifier) -> None:
    p = await verifier.verify(signer.token("cust-1", kind="customer"))
    assert p.kind == "customer" and not p.is_staff and p.roles == frozenset()


async def test_expired_token(signer: TestSigner, verifier: JwksVerifier) -> None:
    with pytest.raises(TokenError, match="expired"):
        await verifier.verify(signer.token("staff-1", ttl=-5))


async def test_tampered_payload(signer: TestSigner, verifier: JwksVerifier) -> None:
    header, payload, signature = signer.token("staff-1", roles=["planner"]).split(".")
    body = unb64json(payload)
    body["roles"] = ["admin"]
    with pytest.raises(TokenError, match=r"[Ss]ignature"):
        await verifier.verify(f"{header}.{b64json(body)}.{signature}")


async def test_tampered_signature(signer: TestSigner, verifier: JwksVerifier) -> None:
    header, payload, signature = signer.token("staff-1").split(".")
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    with pytest.raises(TokenError):
        await verifier.verify(f"{header}.{payload}.{flipped}")


async def test_alg_none_is_refused(signer: TestSigner, verifier: JwksVerifier) -> None:
    for alg in ("none", "None", "NONE"):
        header = b64json({"alg": alg, "kid": signer.kid, "typ": "JWT"})
        token = f"{header}.{b64json(claims(signer))}."
        with pytest.raises(TokenError, match="algorithm"):
            await verifier.verify(token)


def hs256(secret: bytes, header: dict[str, Any], body: dict[str, Any]) -> str:
    signing_input = f"{b64json(header)}.{b64json(body)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


async def test_hmac_with_the_public_key_as_secret_is_refused(
    signer: TestSigner, verifier: JwksVerifier
) -> None:
    public_jwk = signer.jwks()["keys"][0]
    for secret in (
        json.dumps(public_jwk).encode(),
        json.dumps(public_jwk, separators=(",", ":")).encode(),
        json.dumps(signer.jwks()).encode(),
    ):
        token = hs256(secret, {"alg": "HS256", "kid": signer.kid}, claims(signer))
        with pytest.raises(TokenError, match="algorithm"):
            await verifier.verify(token)


async def test_symmetric_keys_in_a_jwks_are_ignored() -> None:
    secret = b"shared-secret-shared-secret-1234"
    jwks = {"keys": [{"kty": "oct", "kid": "k1", "k": b64(secret), "alg": "HS256"}]}
    v = JwksVerifier.from_jwks(jwks, issuer=ISSUER, audience=AUDIENCE)
    token = hs256(secret, {"alg": "HS256", "kid": "k1"}, claims(TestSigner()))
    with pytest.raises(TokenError):
        await v.verify(token)


async def test_algorithm_must_match_the_key(signer: TestSigner, verifier: JwksVerifier) -> None:
    _, payload, signature = signer.token("staff-1").split(".")
    forged = b64json({"alg": "RS256", "kid": signer.kid})
    with pytest.raises(TokenError):
        await verifier.verify(f"{forged}.{payload}.{signature}")


async def test_unknown_kid(verifier: JwksVerifier) -> None:
    other = TestSigner()  # same issuer and audience, another key
    with pytest.raises(TokenError, match="unknown key"):
        await verifier.verify(other.token("staff-1"))


async def test_kid_of_a_known_key_on_a_foreign_signature(
    signer: TestSigner, verifier: JwksVerifier
) -> None:
    other = TestSigner()
    token = other.sign(claims(other), headers={"kid": signer.kid})
    with pytest.raises(TokenError, match=r"[Ss]ignature"):
        await verifier.verify(token)


@pytest.mark.parametrize("kid", [None, "", ["a"], {"k": 1}, 7])
async def test_missing_or_odd_kid(signer: TestSigner, verifier: JwksVerifier, kid: Any) -> None:
    header = {"alg": "ES256"} if kid is None else {"alg": "ES256", "kid": kid}
    token = f"{b64json(header)}.{b64json(claims(signer))}.c2ln"
    with pytest.raises(TokenError):
        await verifier.verify(token)


async def test_wrong_audience(signer: TestSigner, verifier: JwksVerifier) -> None:
    with pytest.raises(TokenError, match=r"(?i)audience"):
        await verifier.verify(signer.token("staff-1", aud="another-system"))


async def test_a_token_not_naming_the_service_is_refused(
    signer: TestSigner, verifier: JwksVerifier
) -> None:
    # made for enrollment and identity: groups (the verifier here) refuses it
    with pytest.raises(TokenError, match=r"(?i)audience"):
        await verifier.verify(signer.token("staff-1", aud=["enrollment", "identity"]))
    assert await verifier.verify(signer.token("staff-1", aud=["groups"]))


async def test_a_person_token_must_name_its_session(
    signer: TestSigner, verifier: JwksVerifier
) -> None:
    with pytest.raises(TokenError, match="session"):
        await verifier.verify(signer.sign(claims(signer, sid=None)))
    with pytest.raises(TokenError, match="session"):
        await verifier.verify(signer.sign(claims(signer, sid="")))


async def test_a_revoked_session_is_refused(signer: TestSigner, verifier: JwksVerifier) -> None:
    from datetime import UTC, datetime, timedelta

    from shared.servicekit.sessions import RevokedSessions
    verifier.revoked = RevokedSessions()
    token = signer.sign(claims(signer, sid="session-9"))
    assert await verifier.verify(token)
    verifier.revoked.add("session-9", datetime.now(UTC) + timedelta(minutes=5))
    with pytest.raises(TokenError, match="session has ended"):
        await verifier.verify(token)
    assert await verifier.verify(signer.sign(claims(signer, sid="session-10")))
    # forgotten once no token of it can be alive
    verifier.revoked.prune(datetime.now(UTC) + timedelta(minutes=6))
    assert await verifier.verify(token)


async def test_wrong_issuer(signer: TestSigner, verifier: JwksVerifier) -> None:
    with pytest.raises(TokenError, match=r"(?i)issuer"):
        await verifier.verify(signer.token("staff-1", iss="someone-else"))


async def test_missing_kind(signer: TestSigner, verifier: JwksVerifier) -> None:
    with pytest.raises(TokenError, match="kind"):
        await verifier.verify(signer.sign(claims(signer, kind=None)))


async def test_unknown_kind(signer: TestSigner, verifier: JwksVerifier) -> None:
    with pytest.raises(TokenError, match="kind"):
        await verifier.verify(signer.token("x-1", kind="robot"))


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "iss", "aud"])
async def test_required_claims(signer: TestSigner, verifier: JwksVerifier, claim: str) -> None:
    with pytest.raises(TokenError):
        await verifier.verify(signer.sign(claims(signer, **{claim: None})))


async def test_not_yet_valid(signer: TestSigner, verifier: JwksVerifier) -> None:
    with pytest.raises(TokenError):
        await verifier.verify(signer.token("staff-1", nbf=int(time.time()) + 600))


async def test_roles_must_be_names(signer: TestSigner, verifier: JwksVerifier) -> None:
    single = await verifier.verify(signer.sign(claims(signer, roles="admin")))
    assert single.roles == frozenset({"admin"})
    with pytest.raises(TokenError, match="roles"):
        await verifier.verify(signer.sign(claims(signer, roles={"admin": True})))


@pytest.mark.parametrize("token", ["", "garbage", "a.b", "a.b.c", "...", "eyJ.eyJ.x"])
async def test_malformed_tokens(verifier: JwksVerifier, token: str) -> None:
    with pytest.raises(TokenError):
        await verifier.verify(token)


# -- the FastAPI dependencies ------------------------------------------------------


def guarded_app(verifier: JwksVerifier) -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)
    install_problem_handlers(app)
    app.state.verifier = verifier

    @app.get("/admin")
    async def admin(p: Annotated[Principal, require_staff("admin")]) -> dict[str, str]:
        return {"sub": p.subject}

    @app.get("/staff")
    async def any_staff(p: Annotated[Principal, require_staff()]) -> dict[str, str]:
        return {"sub": p.subject}

    @app.get("/me")
    async def me(p: Annotated[Principal, require_customer()]) -> dict[str, str]:
        return {"sub": p.subject}

    return app


@pytest.fixture
async def client(verifier: JwksVerifier) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=guarded_app(verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def assert_problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    return body


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": ""}, {"authorization": "Bearer"}, {"authorization": "Basic dTpw"}],
)
async def test_no_bearer_token_is_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for path in ("/admin", "/staff", "/me"):
        resp = await client.get(path, headers=headers)
        body = assert_problem(resp, 401)
        assert body["type"].endswith("/unauthorized")
        assert resp.headers["www-authenticate"] == "Bearer"


async def test_bad_token_is_401_without_echoing_it(
    client: httpx.AsyncClient, signer: TestSigner
) -> None:
    token = signer.token("staff-1", roles=["admin"], ttl=-5)
    resp = await client.get("/admin", headers=bearer(token))
    assert_problem(resp, 401)
    assert token not in resp.text
    resp = await client.get("/admin", headers=bearer("not-a-token"))
    assert_problem(resp, 401)


async def test_customer_token_on_staff_route_is_403(
    client: httpx.AsyncClient, signer: TestSigner
) -> None:
    token = signer.token("cust-1", kind="customer", roles=["admin"])
    for path in ("/admin", "/staff"):
        body = assert_problem(await client.get(path, headers=bearer(token)), 403)
        assert body["type"].endswith("/forbidden")


async def test_staff_without_the_role_is_403(client: httpx.AsyncClient, signer: TestSigner) -> None:
    resp = await client.get("/admin", headers=bearer(signer.token("s-1", roles=["planner"])))
    body = assert_problem(resp, 403)
    assert "admin" in body["detail"]


async def test_staff_with_the_role_is_200(client: httpx.AsyncClient, signer: TestSigner) -> None:
    token = signer.token("s-2", roles=["planner", "admin"])
    resp = await client.get("/admin", headers={"authorization": f"bearer  {token} "})
    assert resp.status_code == 200 and resp.json() == {"sub": "s-2"}
    resp = await client.get("/staff", headers=bearer(signer.token("s-3")))
    assert resp.status_code == 200 and resp.json() == {"sub": "s-3"}


async def test_customer_route(client: httpx.AsyncClient, signer: TestSigner) -> None:
    resp = await client.get("/me", headers=bearer(signer.token("c-9", kind="customer")))
    assert resp.status_code == 200 and resp.json() == {"sub": "c-9"}
    resp = await client.get("/me", headers=bearer(signer.token("s-1", roles=["admin"])))
    assert_problem(resp, 403)


# -- a JWKS fetched over real HTTP -------------------------------------------------


@dataclass
class JwksServer:
    signers: list[TestSigner]
    url: str = ""
    requests: int = 0
    status: int = 200
    extra_entries: list[Any] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        keys = [k for s in self.signers for k in s.jwks()["keys"]]
        return {"keys": [*self.extra_entries, *keys]}


@pytest.fixture
async def jwks_server(signer: TestSigner) -> AsyncIterator[JwksServer]:
    state = JwksServer([signer])
    app = FastAPI()

    @app.get("/.well-known/jwks.json")
    async def jwks() -> JSONResponse:
        state.requests += 1
        if state.status != 200:
            return JSONResponse({"error": "down"}, status_code=state.status)
        return JSONResponse(state.document())

    # A socket bound to a free port before uvicorn starts: requests wait in
    # its backlog until the server accepts them.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    state.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
    try:
        yield state
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


def http_verifier(url: str, **kw: Any) -> JwksVerifier:
    kw.setdefault("cache_seconds", 300.0)
    kw.setdefault("min_refetch_seconds", 0.0)
    return JwksVerifier(url, issuer=ISSUER, audience=AUDIENCE, **kw)


async def test_jwks_is_fetched_once_and_cached(
    jwks_server: JwksServer, signer: TestSigner
) -> None:
    v = http_verifier(jwks_server.url)
    assert jwks_server.requests == 0  # nothing fetched before the first token
    first = await v.verify(signer.token("s-1", roles=["admin"]))
    second = await v.verify(signer.token("s-2"))
    assert (first.subject, second.subject) == ("s-1", "s-2")
    assert jwks_server.requests == 1


async def test_concurrent_first_verifies_fetch_once(
    jwks_server: JwksServer, signer: TestSigner
) -> None:
    v = http_verifier(jwks_server.url, min_refetch_seconds=5.0)
    found = await asyncio.gather(*(v.verify(signer.token(f"s-{i}")) for i in range(10)))
    assert len(found) == 10
    assert jwks_server.requests == 1


async def test_key_rotation_refetches_on_unknown_kid(
    jwks_server: JwksServer, signer: TestSigner
) -> None:
    v = http_verifier(jwks_server.url)
    await v.verify(signer.token("s-1"))
    assert jwks_server.requests == 1

    rotated = TestSigner()
    jwks_server.signers.append(rotated)  # identity publishes a second key
    p = await v.verify(rotated.token("s-2"))
    assert p.subject == "s-2"
    assert jwks_server.requests == 2
    await v.verify(rotated.token("s-3"))
    await v.verify(signer.token("s-4"))  # the old key still verifies
    assert jwks_server.requests == 2


async def test_removed_key_stops_verifying_after_the_cache_expires(
    jwks_server: JwksServer, signer: TestSigner
) -> None:
    v = http_verifier(jwks_server.url, cache_seconds=0.2)
    await v.verify(signer.token("s-1"))
    jwks_server.signers[:] = [TestSigner()]
    await asyncio.sleep(0.3)
    with pytest.raises(TokenError, match="unknown key"):
        await v.verify(signer.token("s-1"))
    assert jwks_server.requests >= 2


async def test_forged_kids_are_rate_limited(jwks_server: JwksServer, signer: TestSigner) -> None:
    v = http_verifier(jwks_server.url, min_refetch_seconds=60.0)
    await v.verify(signer.token("s-1"))
    for _ in range(5):
        with pytest.raises(TokenError, match="unknown key"):
            await v.verify(TestSigner().token("s-x"))
    assert jwks_server.requests == 1


async def test_identity_down_at_start(jwks_server: JwksServer, signer: TestSigner) -> None:
    jwks_server.status = 503
    v = http_verifier(jwks_server.url, min_refetch_seconds=60.0)
    for _ in range(3):
        with pytest.raises(TokenError, match="signing keys unavailable"):
            await v.verify(signer.token("s-1"))
    assert jwks_server.requests == 1  # failures are rate-limited too


async def test_identity_down_later_keeps_the_cached_keys(
    jwks_server: JwksServer, signer: TestSigner
) -> None:
    v = http_verifier(jwks_server.url, cache_seconds=0.05, min_refetch_seconds=60.0)
    await v.verify(signer.token("s-1"))
    jwks_server.status = 500
    await asyncio.sleep(0.1)
    # The cache has expired and identity answers 500: the known key still
    # verifies, and the next fetch waits min_refetch_seconds.
    for i in range(3):
        assert (await v.verify(signer.token(f"s-{i}"))).subject == f"s-{i}"
    assert jwks_server.requests == 1


async def test_unreachable_jwks_url(signer: TestSigner) -> None:
    v = http_verifier("http://127.0.0.1:9/.well-known/jwks.json")
    with pytest.raises(TokenError, match="signing keys unavailable"):
        await v.verify(signer.token("s-1"))


async def test_bad_entries_in_the_jwks_are_skipped(
    jwks_server: JwksServer, signer: TestSigner
) -> None:
    jwks_server.extra_entries = [
        "not-an-object",
        {"kty": "EC", "kid": "broken", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "XYZ", "kid": "alien"},
        {"kty": "oct", "kid": "sym", "k": b64(b"secret")},
    ]
    v = http_verifier(jwks_server.url)
    assert (await v.verify(signer.token("s-1"))).subject == "s-1"


async def test_a_document_that_is_not_a_jwks(jwks_server: JwksServer, signer: TestSigner) -> None:
    jwks_server.signers.clear()
    jwks_server.extra_entries = []
    v = http_verifier(jwks_server.url)
    with pytest.raises(TokenError, match="unknown key"):
        await v.verify(signer.token("s-1"))
