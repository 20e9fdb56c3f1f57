"""Password-recovery links: the link travels sealed for notify only (never a usable
token on the topic, in the outbox, a dead letter, a log or a table other than the
hash identity keeps), and a new password spends every outstanding link."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest

from shared.schemas.envelope import Envelope
from shared.schemas.identity import ACCOUNTS_TOPIC, PasswordRecoveryRequested
from shared.servicekit.consumer import dlq_topic
from shared.servicekit.seal import DEV_SEAL_KEYS, Sealer, SealError, recovery_context
from shared.servicekit.topics import broker_topic
from tests.integration.identity.conftest import IdentityApp, bearer
from tests.integration.identity.test_journey import NEW_PASSWORD, STAFF_PASSWORD, make_staff
from tests.integration.identity.test_pii import read_topic, restore_logging  # noqa: F401
from tests.integration.identity.test_signin import running_identity
from tests.support.kit import wait_until
from tests.support.stack import Servers

ANOTHER_PASSWORD = "yet another fine passphrase"
SEAL_KEYS = "s1:" + base64.b64encode(os.urandom(32)).decode()


async def customer_with_email(ida: IdentityApp, email: str = "marcus@example.org"
                              ) -> dict[str, Any]:
    await make_staff()
    staff = await ida.token("rcaseworker", STAFF_PASSWORD)
    r = await ida.client.post("/v1/customers", headers=bearer(staff), json={
        "first_name": "Marcus", "last_name": "O'Neil", "date_of_birth": "1988-04-12",
        "email": email})
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    made["staff"] = staff
    return made


async def recovery_links(ida: IdentityApp, pool: asyncpg.Pool) -> list[str]:
    """The tokens of every recovery link identity sent, oldest first, opened as notify
    would open them (with the seal keys identity and notify share)."""
    rows = await pool.fetch("SELECT value FROM outbox WHERE event_type ="
                            " 'PasswordRecoveryRequested' ORDER BY created_at, id")
    sealer = Sealer.from_spec(ida.settings.notify_seal_keys_spec)
    tokens = []
    for row in rows:
        ev = Envelope.from_bytes(bytes(row["value"])).parse_payload()
        assert isinstance(ev, PasswordRecoveryRequested)
        assert ev.link_token is None and ev.sealed_link
        link = sealer.open(ev.sealed_link, recovery_context(ev.account_id))
        assert link.startswith(ida.settings.recovery_link_url + "?token=")
        [token] = parse_qs(urlsplit(link).query)["token"]
        tokens.append(token)
    return tokens


async def complete(ida: IdentityApp, token: str, password: str) -> int:
    r = await ida.client.post("/v1/password-recovery/complete",
                              json={"token": token, "new_password": password})
    return r.status_code


async def test_two_links_one_used_the_other_is_refused(
    identity: IdentityApp, pool: asyncpg.Pool,
) -> None:
    made = await customer_with_email(identity)
    for _ in range(2):
        r = await identity.client.post("/v1/password-recovery",
                                       json={"email": "marcus@example.org"})
        assert r.status_code == 202
    first, second = await recovery_links(identity, pool)
    assert first != second
    assert await complete(identity, second, NEW_PASSWORD) == 204
    # the older link was outstanding: the recovery spent it too
    assert await complete(identity, first, ANOTHER_PASSWORD) == 401
    assert await complete(identity, second, ANOTHER_PASSWORD) == 401
    assert (await identity.sign_in(made["username"], NEW_PASSWORD)).status_code == 200
    assert await pool.fetchval(
        "SELECT count(*) FROM recovery_tokens WHERE used_at IS NULL") == 0


async def test_a_password_change_spends_an_outstanding_link(
    identity: IdentityApp, pool: asyncpg.Pool,
) -> None:
    made = await customer_with_email(identity)
    await identity.client.post("/v1/password-recovery", json={"email": "marcus@example.org"})
    # the customer changes the password the usual way (here: the first sign-in's change)
    restricted = await identity.token(made["username"], made["temporary_password"])
    r = await identity.client.post("/v1/me/password", headers=bearer(restricted), json={
        "current_password": made["temporary_password"], "new_password": NEW_PASSWORD})
    assert r.status_code == 204, r.text
    [token] = await recovery_links(identity, pool)
    assert await complete(identity, token, ANOTHER_PASSWORD) == 401
    assert (await identity.sign_in(made["username"], NEW_PASSWORD)).status_code == 200

    # a link asked for after the change works; a reset by staff then spends it
    await identity.client.post("/v1/password-recovery", json={"email": "marcus@example.org"})
    _, fresh = await recovery_links(identity, pool)
    r = await identity.client.post(f"/v1/customers/{made['id']}/password-reset",
                                   headers=bearer(made["staff"]))
    assert r.status_code == 200, r.text
    assert await complete(identity, fresh, ANOTHER_PASSWORD) == 401
    # a link of another customer is untouched by this one's change
    other = await identity.client.post("/v1/customers", headers=bearer(made["staff"]), json={
        "first_name": "Ann", "last_name": "Lee", "date_of_birth": "1975-02-03",
        "email": "ann@example.org"})
    assert other.status_code == 201, other.text
    await identity.client.post("/v1/password-recovery", json={"email": "ann@example.org"})
    *_, anns = await recovery_links(identity, pool)
    r = await identity.client.post(f"/v1/customers/{made['id']}/password-reset",
                                   headers=bearer(made["staff"]))
    assert r.status_code == 200
    assert await complete(identity, anns, ANOTHER_PASSWORD) == 204


async def test_the_token_is_nowhere_but_sealed_and_hashed(
    restore_logging: None,  # noqa: F811
    capsys: pytest.CaptureFixture[str], identity_env: dict[str, str],
    pool: asyncpg.Pool, servers: Servers, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IDENTITY_NOTIFY_SEAL_KEYS", SEAL_KEYS)
    async with running_identity() as (ida, _):
        made = await customer_with_email(ida)
        r = await ida.client.post("/v1/password-recovery",
                                  json={"email": "marcus@example.org"})
        assert r.status_code == 202

        async def all_published() -> bool:
            return bool(await pool.fetchval(
                "SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"))

        await wait_until(all_published, timeout=20)
        [token] = await recovery_links(ida, pool)
        assert len(token) >= 32
        # the link works, and only once
        assert await complete(ida, token, NEW_PASSWORD) == 204
        assert await complete(ida, token, ANOTHER_PASSWORD) == 401

    # the event opens with the shared keys only: not with the development key
    row = await pool.fetchrow(
        "SELECT value FROM outbox WHERE event_type = 'PasswordRecoveryRequested'")
    assert row is not None
    ev = Envelope.from_bytes(bytes(row["value"])).parse_payload()
    assert isinstance(ev, PasswordRecoveryRequested) and ev.sealed_link
    assert ev.sealed_link.startswith("v1.s1.")
    with pytest.raises(SealError):
        Sealer.from_spec(DEV_SEAL_KEYS).open(ev.sealed_link, recovery_context(ev.account_id))

    forms = (token.encode(), token.encode().hex().encode())
    logs = capsys.readouterr().out
    assert "service_started" in logs  # the capture works
    assert token not in logs

    # every table: the token is in none; recovery_tokens holds its hash only
    tables = await pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    assert any(t["table_name"] == "outbox" for t in tables)
    for t in tables:
        rows = await pool.fetch(f'SELECT x::text AS row FROM "{t["table_name"]}" x')
        assert not [r["row"] for r in rows if token in r["row"]], t["table_name"]
    digest = hashlib.sha256(token.encode()).digest()
    assert await pool.fetchval(
        "SELECT count(*) FROM recovery_tokens WHERE token_hash = $1", digest) == 1
    outbox = await pool.fetch("SELECT value FROM outbox")
    assert not [r for r in outbox if any(f in bytes(r["value"]) for f in forms)]

    # the topic and its dead letters
    records = await read_topic(servers.bootstrap, broker_topic(ACCOUNTS_TOPIC))
    ours = [r for r in records if r.key == made["id"].encode()]
    assert any(b"PasswordRecoveryRequested" in r.value for r in ours)
    for record in records:
        assert not any(f in record.value for f in forms)
        assert not any(f in (v or b"") for _, v in record.headers for f in forms)
    try:
        dead = await read_topic(servers.bootstrap, broker_topic(dlq_topic(ACCOUNTS_TOPIC)),
                                timeout=5)
    except AssertionError:  # no dead-letter topic: nothing was dead-lettered
        dead = []
    assert not [r for r in dead if any(f in r.value for f in forms)]
