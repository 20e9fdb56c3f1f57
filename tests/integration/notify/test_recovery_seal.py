"""Recovery end to end: identity (in-process, its own database, its relay on the
broker) seals the link for notify with the keys both hold; notify emails it over real
SMTP; the link from the email completes the recovery. The token is on no topic and in
no table of notify."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
import pytest_asyncio

from identity.app import create_app as create_identity
from identity.deps import Deps as IdentityDeps
from identity.service.accounts import create_staff
from identity.settings import IdentitySettings
from shared.devstack.smtp_sink import read_message
from shared.schemas.identity import ACCOUNTS_TOPIC
from shared.servicekit.topics import broker_topic
from tests.integration.enrollment.conftest import _key, drop_database, fresh_database
from tests.integration.identity.test_pii import read_topic
from tests.integration.notify.conftest import NotifyStack
from tests.support.stack import Servers

STAFF_PASSWORD = "correct horse battery staple 42"
NEW_PASSWORD = "a long and memorable passphrase"
SEAL_KEYS = "s1:" + base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(autouse=True)
def seal_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """identity and notify hold the same fresh keys (not the development one); set
    before notify's stack reads its settings."""
    monkeypatch.setenv("IDENTITY_NOTIFY_SEAL_KEYS", SEAL_KEYS)
    monkeypatch.setenv("NOTIFY_SEAL_KEYS", SEAL_KEYS)
    yield


@pytest_asyncio.fixture
async def identity(stack: NotifyStack, servers: Servers, monkeypatch: pytest.MonkeyPatch
                   ) -> AsyncIterator[tuple[httpx.AsyncClient, IdentitySettings, asyncpg.Pool]]:
    name = await fresh_database(servers)
    for k, v in {"IDENTITY_DATABASE_URL": servers.pg_dsn(name),
                 "IDENTITY_SSN_KEYS": f"k1:{_key()}", "IDENTITY_SSN_ACTIVE_KEY": "k1",
                 "IDENTITY_SSN_HMAC_KEY": _key(), "IDENTITY_DATA_KEY": _key(),
                 "IDENTITY_OUTBOX_POLL_INTERVAL": "0.2"}.items():
        monkeypatch.setenv(k, v)
    settings = IdentitySettings()
    app = create_identity(settings)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://identity") as client:
            yield client, settings, app.state.runtime.pool
    finally:
        await drop_database(servers, name)


async def test_the_emailed_link_recovers_the_account_and_is_nowhere_else(
    stack: NotifyStack, identity: tuple[httpx.AsyncClient, IdentitySettings, asyncpg.Pool],
    servers: Servers, capsys: pytest.CaptureFixture[str],
) -> None:
    ident, settings, id_pool = identity
    await create_staff(
        id_pool, IdentityDeps.from_settings(settings), username="rcase", first_name="Robin",
        last_name="Case", email=None, roles=["staff"], password=STAFF_PASSWORD)
    r = await ident.post("/v1/auth/token", data={"username": "rcase",
                                                  "password": STAFF_PASSWORD})
    assert r.status_code == 200, r.text
    staff = {"Authorization": f"Bearer {r.json()['access_token']}"}
    address = stack.address("marcus")
    r = await ident.post("/v1/customers", headers=staff, json={
        "first_name": "Marcus", "last_name": "Oneil", "date_of_birth": "1988-04-12",
        "email": address})
    assert r.status_code == 201, r.text
    made = r.json()
    await stack.wait_for("SELECT true FROM customers WHERE id = $1::uuid", made["id"])

    r = await ident.post("/v1/password-recovery", json={"email": address})
    assert r.status_code == 202
    await stack.wait_for("SELECT true FROM messages WHERE kind = 'password_recovery'")
    await stack.drain()
    [mail] = stack.mail_to(address)
    part = read_message(stack.mail_dir, mail.id).get_body(preferencelist=("plain",))
    assert part is not None
    found = re.search(r"(https?://\S+/recover\?token=\S+)", part.get_content())
    assert found is not None, part.get_content()
    link = found.group(1)
    assert link.startswith(settings.recovery_link_url + "?token=")
    [token] = parse_qs(urlsplit(link).query)["token"]

    # nowhere in notify: not a table, not an event, not a log line
    tables = await stack.pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    for t in tables:
        rows = await stack.pool.fetch(f'SELECT x::text AS row FROM "{t["table_name"]}" x')
        assert not [x["row"] for x in rows if token in x["row"]], t["table_name"]
    records = await read_topic(servers.bootstrap, broker_topic(ACCOUNTS_TOPIC))
    assert any(b"PasswordRecoveryRequested" in rec.value for rec in records)
    assert not [rec for rec in records if token.encode() in rec.value]
    assert token not in capsys.readouterr().out

    # the emailed link works, once
    r = await ident.post("/v1/password-recovery/complete",
                         json={"token": token, "new_password": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    r = await ident.post("/v1/auth/token", data={"username": made["username"],
                                                  "password": NEW_PASSWORD})
    assert r.status_code == 200, r.text
    r = await ident.post("/v1/password-recovery/complete",
                         json={"token": token, "new_password": "yet another passphrase 9"})
    assert r.status_code == 401
