"""Client credentials issued by identity, used on sync-iwds; linking through the matcher."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import pytest_asyncio

from identity.app import create_app as create_identity
from identity.service.clients import create_client
from identity.settings import IdentitySettings
from shared.servicekit.auth import JwksVerifier
from shared.servicekit.db import create_pool
from shared.servicekit.errors import DomainError
from sync_iwds import service
from sync_iwds.app import create_app
from sync_iwds.deps import Deps, IdentityClient
from sync_iwds.settings import SyncIwdsSettings
from tests.integration.sync_iwds.conftest import events, person, write_csv
from tests.support.stack import Servers


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest_asyncio.fixture
async def identity(servers: Servers, monkeypatch: pytest.MonkeyPatch
                   ) -> AsyncIterator[tuple[httpx.AsyncClient, asyncpg.Pool]]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(servers.pg_dsn("postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = servers.pg_dsn(name)
    for k, v in {"CSC_KAFKA_BOOTSTRAP": servers.bootstrap, "CSC_KAFKA_CONSUMER_MODE": "assign",
                 "IDENTITY_DATABASE_URL": dsn, "IDENTITY_SSN_KEYS": f"k1:{_key()}",
                 "IDENTITY_SSN_ACTIVE_KEY": "k1", "IDENTITY_SSN_HMAC_KEY": _key(),
                 "IDENTITY_DATA_KEY": _key()}.items():
        monkeypatch.setenv(k, v)
    app = create_identity(IdentitySettings())
    pool = await create_pool(dsn, min_size=1, max_size=3)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://identity") as client:
            yield client, pool
    finally:
        await pool.close()
        admin = await asyncpg.connect(servers.pg_dsn("postgres"))
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _token(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    return await client.post("/v1/auth/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})


async def test_client_credential_feeds_sync_iwds_and_nothing_else(
        identity: tuple[httpx.AsyncClient, asyncpg.Pool], database: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ident, id_pool = identity
    client_id, secret = await create_client(id_pool, "iwds-producer", ["iwds:feed"])
    with pytest.raises(DomainError):
        await create_client(id_pool, "iwds-producer", ["iwds:feed"])  # name taken
    with pytest.raises(DomainError):
        await create_client(id_pool, "other", ["admin"])  # unknown scope
    stored = await id_pool.fetchval("SELECT secret_hash FROM oauth_clients")
    assert secret.encode() not in bytes(stored)

    r = await _token(ident, str(client_id), secret)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["kind"] == "client" and claims["scope"] == "iwds:feed"
    assert claims["roles"] == [] and claims["sub"] == str(client_id) and "sid" not in claims
    assert claims["aud"] == ["sync-iwds"]  # the service its scope is used at, only
    assert "refresh_token" not in r.json()
    assert (await _token(ident, str(client_id), secret + "x")).status_code == 401
    assert (await _token(ident, str(uuid.uuid4()), secret)).status_code == 401
    assert (await _token(ident, "not-a-uuid", secret)).status_code == 401
    assert (await ident.post("/v1/auth/token", data={"grant_type": "client_credentials"})
            ).status_code == 422

    bearer = {"Authorization": f"Bearer {token}"}
    # identity refuses it everywhere: the token is not for identity at all
    assert (await ident.get("/v1/me", headers=bearer)).status_code == 401
    assert (await ident.get("/v1/duplicates", headers=bearer)).status_code == 401
    assert (await ident.post("/v1/matches", headers=bearer, json={"last_name": "Lee"})
            ).status_code == 401

    # sync-iwds, verifying with identity's published keys, takes the feed
    jwks = (await ident.get("/.well-known/jwks.json")).json()
    monkeypatch.setenv("CSC_KAFKA_CONSUMER_MODE", "assign")
    app = create_app(SyncIwdsSettings(database_url=database), verifier=JwksVerifier.from_jwks(
        jwks, issuer="csc-identity", audience="sync-iwds"))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sync-iwds") as iwds:
        body = (b"iwds_staff_id,worknet_username,lwia_code,office_code,access_level\n"
                b"S1,jd,07,,lwia\n")
        r = await iwds.post("/v1/feeds/staff-access", params={"mode": "partial"},
                            content=body, headers=bearer)
        assert r.status_code == 202, r.text
        assert (await iwds.get("/v1/runs", headers=bearer)).status_code == 403


async def test_records_are_linked_when_the_matcher_finds_one_strong_candidate(
        identity: tuple[httpx.AsyncClient, asyncpg.Pool], iwds_pool: asyncpg.Pool, deps: Deps,
        tmp_path: Any) -> None:
    ident, id_pool = identity
    r = await ident.post("/v1/registrations", json={
        "username": "marisol.v", "password": "a long and memorable passphrase 9",
        "first_name": "Marisol", "last_name": "Vandermeer", "date_of_birth": "1987-03-14"})
    assert r.status_code == 202, r.text  # the same answer whether an account was made
    account = str(await id_pool.fetchval(
        "SELECT account_id FROM usernames WHERE username_lower = 'marisol.v'"))
    client_id, secret = await create_client(id_pool, "sync-iwds", ["identity:match"])
    matcher = IdentityClient("http://identity", str(client_id), secret, timeout=5,
                             http=httpx.AsyncClient(transport=ident._transport,
                                                    base_url="http://identity"))
    linking = replace(deps, identity=matcher)
    await service.import_file(iwds_pool, linking, feed="participants", mode="full",
                              path=write_csv(tmp_path / "a.csv", [
                                  person("P1", first_name="Marisol", last_name="Vandermeer",
                                         date_of_birth="1987-03-14"),
                                  person("P2", first_name="Nobody", last_name="Known",
                                         date_of_birth="1970-01-01")]))
    asked, linked = await service.link_once(iwds_pool, linking)
    assert (asked, linked) == (2, 1)
    got = {e["iwds_person_id"]: e for e in await events(iwds_pool, "IwdsRecordUpdated")
           if e["account_id"]}
    assert got["P1"]["account_id"] == account and "P2" not in got
    assert await service.link_once(iwds_pool, linking) == (0, 0)  # tried: not asked again

    # identity away: nothing linked, records stay unlinked, no error escapes as a crash
    away = IdentityClient("http://127.0.0.1:9", str(client_id), secret, timeout=1)
    await iwds_pool.execute("UPDATE iwds_people SET link_tried_at = NULL")
    from sync_iwds.deps import IdentityUnavailable
    with pytest.raises(IdentityUnavailable):
        await service.link_once(iwds_pool, replace(deps, identity=away))
    await away.close()
    await matcher.close()
