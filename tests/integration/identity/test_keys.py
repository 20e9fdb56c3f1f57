"""Access tokens at the API (expired, tampered, alg none, HMAC with the public key,
the wrong kind, a password-change token) and signing key rotation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from identity import app as identity_app
from identity.domain.tokens import issue_access_token
from identity.service.accounts import load_keyring
from shared.cli.main import app as csc
from tests.integration.identity.conftest import IdentityApp, bearer
from tests.integration.identity.test_journey import NEW_PASSWORD, STAFF_PASSWORD, make_staff
from tests.integration.identity.test_signin import new_customer, running_identity
from tests.support.kit import wait_until


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


def hmac_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


async def sign_with_service_key(
    ida: IdentityApp, pool: asyncpg.Pool, claims: dict[str, Any], now: datetime
) -> str:
    """A token made exactly as identity makes one, with its own key, at ``now``."""
    async with pool.acquire() as conn:
        ring = await load_keyring(conn, base64.b64decode(ida.settings.data_key.get_secret_value()))
    from identity.deps import Deps

    tokens = Deps.from_settings(ida.settings).tokens
    return issue_access_token(
        ring.signing_key(), subject=claims["sub"], kind=claims["kind"], roles=claims["roles"],
        session_id=claims["sid"], now=now, settings=tokens)


async def get_me(ida: IdentityApp, token: str) -> int:
    return (await ida.client.get("/v1/me", headers=bearer(token))).status_code


async def test_expired_tampered_unsigned_and_hmac_tokens_are_refused(
    identity: IdentityApp, pool: asyncpg.Pool
) -> None:
    await make_staff()
    good = await identity.token("rcaseworker", STAFF_PASSWORD)
    header, claims = unverified(good)
    assert header["alg"] == "ES256" and claims["kind"] == "staff"
    assert await get_me(identity, good) == 200

    # expired: the same claims signed with the service's key twenty minutes ago
    now = datetime.now(UTC)
    assert await get_me(identity, await sign_with_service_key(identity, pool, claims, now)) == 200
    expired = await sign_with_service_key(identity, pool, claims, now - timedelta(minutes=20))
    r = await identity.client.get("/v1/me", headers=bearer(expired))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"

    head_b64, _, signature = good.split(".")
    # tampered: a role added to the payload, the signature kept
    forged = {**claims, "roles": ["admin", "reentry"]}
    assert await get_me(identity, f"{head_b64}.{b64(json.dumps(forged).encode())}.{signature}") \
        == 401
    # tampered: one signature byte changed
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[5] ^= 0x01
    assert await get_me(identity, f"{head_b64}.{good.split('.')[1]}.{b64(bytes(raw))}") == 401

    # alg none, with and without a kid
    for none_header in ({"alg": "none", "typ": "JWT", "kid": header["kid"]},
                        {"alg": "none", "typ": "JWT"}, {"alg": "None", "kid": header["kid"]}):
        unsigned = f"{b64(json.dumps(none_header).encode())}.{b64(json.dumps(claims).encode())}."
        assert await get_me(identity, unsigned) == 401

    # HS256 with the published public key as the secret (JWK JSON, and PEM)
    jwk = next(k for k in (await identity.client.get("/.well-known/jwks.json")).json()["keys"]
               if k["kid"] == header["kid"])
    public = jwt.PyJWK(jwk).key
    pem = public.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    secrets = [json.dumps(jwk).encode(), json.dumps(jwk, separators=(",", ":")).encode(), pem]
    for secret in secrets:
        for alg in ("HS256", "HS512"):
            token = hmac_token({"alg": alg, "typ": "JWT", "kid": header["kid"]}, claims, secret)
            assert await get_me(identity, token) == 401, alg

    # garbage and a missing scheme
    for value in ("Bearer not.a.token", "Bearer ", good, f"Basic {good}"):
        r = await identity.client.get("/v1/me", headers={"Authorization": value})
        assert r.status_code == 401, value


async def test_customer_and_password_change_tokens_are_kept_off_staff_routes(
    identity: IdentityApp,
) -> None:
    await make_staff()
    staff = await identity.token("rcaseworker", STAFF_PASSWORD)
    created = await new_customer(identity, staff)
    cid = created["id"]
    restricted = await identity.token(created["username"], created["temporary_password"])
    assert unverified(restricted)[1]["scope"] == "password-change"

    staff_routes = [
        ("POST", "/v1/customers",
         {"first_name": "A", "last_name": "B", "date_of_birth": "1990-01-01"}),
        ("GET", f"/v1/customers/{cid}", None),
        ("POST", f"/v1/customers/{cid}/password-reset", None),
    ]
    for method, path, body in [("GET", "/v1/me", None), *staff_routes]:
        r = await identity.client.request(method, path, json=body, headers=bearer(restricted))
        assert r.status_code == 403, (path, r.text)
        assert r.json()["type"].endswith("/password-change-required"), path

    r = await identity.client.post("/v1/me/password", headers=bearer(restricted), json={
        "current_password": created["temporary_password"], "new_password": NEW_PASSWORD})
    assert r.status_code == 204
    customer = await identity.token(created["username"], NEW_PASSWORD)
    assert await get_me(identity, customer) == 200
    for method, path, body in staff_routes:
        r = await identity.client.request(method, path, json=body, headers=bearer(customer))
        assert r.status_code == 403, (path, r.text)
        assert r.json()["type"].endswith("/forbidden"), path
    # nothing happened: one customer, and its password is still the new one
    assert (await identity.sign_in(created["username"], NEW_PASSWORD)).status_code == 200


# -- rotation ----------------------------------------------------------------------------


@pytest_asyncio.fixture
async def reloading(
    identity_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[IdentityApp]:
    """The service, re-reading its signing keys every 0.1 s instead of every 30 s."""
    monkeypatch.setattr(identity_app, "KEY_RELOAD_SECONDS", 0.1)
    async with running_identity() as (ida, _):
        yield ida


async def rotate() -> str:
    result = await asyncio.to_thread(CliRunner().invoke, csc, ["identity", "rotate-keys"])
    assert result.exit_code == 0, result.output
    assert "signing with new key" in result.output
    return str(result.output.split("signing with new key ")[1].split(";")[0])


async def kids(ida: IdentityApp) -> list[str]:
    return [k["kid"] for k in (await ida.client.get("/.well-known/jwks.json")).json()["keys"]]


async def test_rotation_publishes_both_keys_then_drops_the_oldest(
    reloading: IdentityApp, pool: asyncpg.Pool
) -> None:
    ida = reloading
    await make_staff()
    (first_kid,) = await kids(ida)
    before = await ida.token("rcaseworker", STAFF_PASSWORD)
    assert unverified(before)[0]["kid"] == first_kid

    second_kid = await rotate()

    async def reloaded(n: int, newest: str) -> bool:
        found = await kids(ida)
        return len(found) == n and found[0] == newest

    await wait_until(lambda: reloaded(2, second_kid), timeout=10)
    assert await kids(ida) == [second_kid, first_kid]
    jwk = (await ida.client.get("/.well-known/jwks.json")).json()["keys"][0]
    assert jwk["kty"] == "EC" and "d" not in jwk
    # a token signed before the rotation still verifies; new ones use the new key
    assert await get_me(ida, before) == 200
    middle = await ida.token("rcaseworker", STAFF_PASSWORD)
    assert unverified(middle)[0]["kid"] == second_kid
    assert await get_me(ida, middle) == 200

    third_kid = await rotate()
    await wait_until(lambda: reloaded(2, third_kid), timeout=10)
    assert await kids(ida) == [third_kid, second_kid]
    assert await get_me(ida, before) == 401  # its key left the JWKS
    assert await get_me(ida, middle) == 200
    statuses = {r["kid"]: r["status"] for r in await pool.fetch("SELECT kid, status FROM "
                                                                  "signing_keys")}
    assert statuses == {first_kid: "retired", second_kid: "retiring", third_kid: "active"}
