"""An SSN planted in requests (good ones, bad ones, a URL) never comes out: not in
a log line, a response, the outbox, the database in clear, or the broker."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.schemas.identity import ACCOUNTS_TOPIC
from shared.servicekit.consumer import dlq_topic
from shared.servicekit.logs import configure_logging
from shared.servicekit.topics import broker_topic
from tests.integration.identity.conftest import IdentityApp, bearer
from tests.integration.identity.test_journey import STAFF_PASSWORD, make_staff
from tests.integration.identity.test_signin import running_identity
from tests.support.kit import wait_until
from tests.support.stack import Servers

SSN = "219-09-9999"
FORMS = (SSN, SSN.replace("-", ""), "219 09 9999")


def leaks(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [form for form in FORMS if form in text]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Afterwards, log to pytest's own capture again, not to capsys's closed buffer."""
    yield
    configure_logging("tests", env="test", stream=sys.stdout)


async def read_topic(bootstrap: str, topic: str, timeout: float = 15.0) -> list[Any]:
    """Every record on every partition of ``topic``, from the earliest offset to the end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer.topics()  # fetches metadata
        partitions = consumer.partitions_for_topic(topic)
        assert partitions, f"no partitions for {topic}"
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            assert time.monotonic() < deadline, "the topic was not read to its end in time"
            batches = await consumer.getmany(*tps, timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def plant_everywhere(ida: IdentityApp) -> tuple[list[httpx.Response], str]:
    """Run the flows with the SSN in them; the responses, and the created account's id."""
    c = ida.client
    await make_staff()
    staff = bearer(await ida.token("rcaseworker", STAFF_PASSWORD))
    person = {"first_name": "Marcus", "last_name": "Oneil", "date_of_birth": "1988-04-12"}
    out = []

    async def send(method: str, path: str, **kw: Any) -> httpx.Response:
        r = await c.request(method, path, **kw)
        out.append(r)
        return r

    created = await send("POST", "/v1/customers", headers={**staff, "Idempotency-Key": "k1"},
                         json={**person, "ssn": SSN, "email": "marcus@example.org"})
    assert created.status_code == 201, created.text
    account_id = created.json()["id"]
    replay = await send("POST", "/v1/customers", headers={**staff, "Idempotency-Key": "k1"},
                        json={**person, "ssn": SSN, "email": "marcus@example.org"})
    assert replay.status_code == 201
    dup = await send("POST", "/v1/customers", headers=staff, json={**person, "ssn": SSN})
    assert dup.status_code == 409
    bad = [
        {**person, "ssn": SSN, "email": "not an email"},           # good SSN, other field bad
        {**person, "ssn": SSN + "9"},                               # bad SSN holding the SSN
        {**person, "ssn": "x" + SSN},
        {**person, "ssn": SSN * 3},                                 # over the length limit
        {**person, "ssn": int(SSN.replace("-", ""))},               # a number, not a string
        {**person, SSN: "an extra field named by it"},
        {**person, "notes": SSN},
        {**person, "ssn": SSN, "date_of_birth": "2999-01-01"},
    ]
    for body in bad:
        r = await send("POST", "/v1/customers", headers=staff, json=body)
        assert r.status_code == 422, (body, r.text)
    r = await send("POST", "/v1/customers", headers=staff,
                   content=b'{"first_name": "M", "ssn": "' + SSN.encode() + b'",,}')
    assert r.status_code == 422
    for path in (f"/v1/customers/{SSN}", f"/v1/customers/{SSN.replace('-', '')}"):
        assert (await send("GET", path, headers=staff)).status_code == 422
        assert (await send("GET", path)).status_code == 401
        assert (await send("POST", path + "/password-reset", headers=staff)).status_code == 422
    assert (await send("GET", f"/v1/nothing-here/{SSN}")).status_code == 404
    r = await send("GET", f"/v1/customers/{account_id}", headers=staff, params={"ssn": SSN})
    assert r.status_code == 200 and r.json()["ssn_last4"] == "9999"
    assert (await send("POST", "/v1/auth/token",
                       data={"username": SSN, "password": SSN * 2})).status_code == 401
    r = await send("POST", "/v1/password-recovery", json={"email": f"{SSN}@example.org"})
    assert r.status_code == 202
    r = await send("POST", "/v1/password-recovery", json={"email": "marcus@example.org"})
    assert r.status_code == 202
    # matching: the SSN, a slip of it, a bad one; self-registration with it; the queue
    r = await send("POST", "/v1/matches", headers=staff, json={"ssn": SSN})
    assert r.status_code == 422  # an SSN alone is no search
    r = await send("POST", "/v1/matches", headers=staff, json={**person, "ssn": SSN})
    assert r.status_code == 200 and r.json()["candidates"][0]["ssn_last4"] == "9999"
    r = await send("POST", "/v1/matches", headers=staff, json={**person, "ssn": SSN[:-1] + "8"})
    assert r.status_code == 200 and r.json()["candidates"]
    for bad_ssn in (SSN + "1", "666" + SSN[3:]):
        r = await send("POST", "/v1/matches", headers=staff, json={"ssn": bad_ssn})
        assert r.status_code == 422
    r = await send("POST", "/v1/registrations", json={
        **person, "username": "marcus88", "password": "a long and memorable passphrase",
        "ssn": SSN})
    assert r.status_code == 202  # held for staff: the person has an account
    assert (await send("GET", "/v1/duplicates", headers=staff)).status_code == 200
    assert (await send("GET", "/v1/held-registrations", headers=staff)).status_code == 200
    return out, account_id


async def test_a_planted_ssn_never_comes_out(
    restore_logging: None, capsys: pytest.CaptureFixture[str],
    identity_env: dict[str, str], pool: asyncpg.Pool, servers: Servers,
) -> None:
    async with running_identity() as (ida, _):
        responses, account_id = await plant_everywhere(ida)
        # the 500 path: a request holding the SSN meets an unexpected failure
        await pool.execute("""
            CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'storage failed for %', NEW.first_name; END $$;
            CREATE TRIGGER fail_insert BEFORE INSERT ON customers
                FOR EACH ROW EXECUTE FUNCTION fail_insert();""")
        staff = bearer(await ida.token("rcaseworker", STAFF_PASSWORD))
        failed = await ida.client.post("/v1/customers", headers=staff, json={
            "first_name": "Zed", "last_name": "Quist", "date_of_birth": "1970-01-01",
            "ssn": SSN, "rejected_account_ids": [account_id]})
        assert failed.status_code == 500
        responses.append(failed)
        await pool.execute("DROP TRIGGER fail_insert ON customers")

        async def all_published() -> bool:
            return bool(await pool.fetchval(
                "SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"))

        await wait_until(all_published, timeout=20)

    for r in responses:
        where = f"{r.request.method} {r.request.url.path} -> {r.status_code}"
        assert not leaks(r.text), (where, r.text)
        assert not leaks(str(r.headers.raw)), where

    logs = capsys.readouterr().out
    assert "service_started" in logs and "service_stopped" in logs  # the capture works
    lines = logs.splitlines()
    assert not [line for line in lines if leaks(line)]

    outbox = await pool.fetch("SELECT o::text AS row, value FROM outbox o")
    assert len(outbox) == 3  # staff created, customer created, recovery requested
    assert not [r["row"] for r in outbox if leaks(r["row"]) or leaks(bytes(r["value"]))]

    # no table keeps it in clear (the customer row has ciphertext, a keyed hash, last four)
    tables = await pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    for t in tables:
        rows = await pool.fetch(f'SELECT x::text AS row FROM "{t["table_name"]}" x')
        assert not [r["row"] for r in rows if leaks(r["row"])], t["table_name"]
    stored = await pool.fetchrow("SELECT ssn_last4, ssn_ciphertext FROM customers")
    assert stored is not None and stored["ssn_last4"] == "9999"
    assert stored["ssn_ciphertext"] is not None

    records = await read_topic(servers.bootstrap, broker_topic(ACCOUNTS_TOPIC))
    dead = await read_topic(servers.bootstrap, broker_topic(dlq_topic(ACCOUNTS_TOPIC)))
    for record in dead:
        assert not leaks(record.value)
    ours = [r for r in records if r.key == account_id.encode()]
    assert ours, "the customer's events were not found on the broker"
    assert any(b"CustomerAccountCreated" in r.value for r in ours)
    assert any(b"PasswordRecoveryRequested" in r.value for r in ours)
    for record in records:
        assert not leaks(record.value)
        assert not leaks(record.key or b"")
        assert not any(leaks(v or b"") for _, v in record.headers)


async def test_an_ssn_as_request_id_is_not_carried_along(
    restore_logging: None, capsys: pytest.CaptureFixture[str],
    identity_env: dict[str, str], pool: asyncpg.Pool,
) -> None:
    async with running_identity() as (ida, _):
        await make_staff()
        staff = await ida.token("rcaseworker", STAFF_PASSWORD)
        people = [("Ann", "Lee", "1990-01-02"), ("Bo", "Kowalczyk", "1972-11-23"),
                  ("Cyrus", "Mendenhall", "2001-06-30")]
        for rid, (first, last, born) in zip(FORMS, people, strict=True):
            r = await ida.client.post(
                "/v1/customers", headers={**bearer(staff), "X-Request-ID": rid},
                json={"first_name": first, "last_name": last, "date_of_birth": born})
            assert r.status_code == 201, r.text
            assert not leaks(str(r.headers.raw))
            assert r.headers["x-request-id"] and not leaks(r.headers["x-request-id"])
    outbox = await pool.fetch("SELECT value FROM outbox")
    assert outbox and not [o for o in outbox if leaks(bytes(o["value"]))]
    # the audit rows carry the id that replaced it, never the SSN
    audit = await pool.fetch(
        "SELECT request_id FROM audit_log WHERE action = 'customer.create'")
    assert len(audit) == len(FORMS)
    assert all(a["request_id"] and not leaks(a["request_id"]) for a in audit)
    logs = capsys.readouterr().out
    assert "service_started" in logs  # the capture works
    assert not [line for line in logs.splitlines() if leaks(line)]
    await asyncio.sleep(0)
