"""The service running (routes, applier, consumer, relay) on the real database and broker."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.schemas.envelope import Envelope
from shared.schemas.iwds import RECORDS_TOPIC, IwdsRawRecords
from shared.servicekit.topics import broker_topic
from sync_iwds.domain import PARTICIPANT_COLUMNS
from tests.integration.sync_iwds.conftest import Service, events, person
from tests.support.kit import wait_until


def csv_body(rows: list[dict[str, Any]], columns: list[str] | None = None) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns or list(PARTICIPANT_COLUMNS),
                       extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode()


async def chunks(data: bytes, size: int = 97) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def post_feed(svc: Service, body: bytes, *, feed: str = "participants",
                    mode: str = "full", headers: dict[str, str] | None = None) -> Any:
    return await svc.client.post(
        f"/v1/feeds/{feed}", params={"mode": mode}, content=chunks(body),
        headers=headers if headers is not None else svc.client_headers())


async def test_feed_over_http_streamed_then_runs_api(iwds_service: Service) -> None:
    svc = iwds_service
    rows = [person(f"P{i}", ssn=f"123-45-{i:04d}") for i in range(40)]
    rows.append(person("", last_name="nobody"))
    r = await post_feed(svc, csv_body(rows, ["ssn", *PARTICIPANT_COLUMNS]))
    assert r.status_code == 202, r.text
    run_id = r.json()["run_id"]
    run = await svc.wait_run(run_id)
    assert run["feed"] == "participants" and run["mode"] == "full"
    assert run["counts"] == {"read": 41, "added": 40, "changed": 0, "removed": 0,
                             "unchanged": 0, "rejected": 1, "unlinked": 40}
    assert run["finished_at"] is not None

    admin = svc.staff_headers("admin")
    rej = await svc.client.get(f"/v1/runs/{run_id}/rejected", headers=admin)
    assert rej.status_code == 200 and rej.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(rej.text))) == [
        ["line", "iwds_id", "reason"], ["42", "", "missing iwds_person_id"]]

    listed = await svc.client.get("/v1/runs", headers=admin, params={"limit": 1})
    assert listed.json()["items"][0]["id"] == run_id

    # NDJSON, partial, between nightly runs: a change and an older (ignored) one
    newer = person("P1", status="exited", exit_date="2026-11-05",
                   updated_at="2026-11-05T00:00:00Z")
    older = person("P2", office_code="OLD", updated_at="2026-10-01T00:00:00Z")
    body = "\n".join(json.dumps(x) for x in (newer, older)).encode()
    r = await post_feed(svc, body, mode="partial")
    run = await svc.wait_run(r.json()["run_id"])
    assert (run["counts"]["changed"], run["counts"]["unchanged"]) == (1, 1)

    # the events reach the broker
    async def published() -> bool:
        return bool(await svc.pool.fetchval(
            "SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"))
    await wait_until(published, timeout=30)
    consumer = AIOKafkaConsumer(broker_topic(RECORDS_TOPIC), bootstrap_servers=svc.bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        got: list[bytes] = []
        deadline = time.monotonic() + 20
        while len(got) < 41 and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            got += [m.value for msgs in batch.values() for m in msgs if m.value is not None]
    finally:
        await consumer.stop()
    assert len(got) == 41
    assert not any(b"123-45-" in v for v in got)
    assert not any(b"ssn" in v for v in got)


async def test_bad_header_over_http_is_refused_naming_the_column(iwds_service: Service) -> None:
    svc = iwds_service
    r = await post_feed(svc, csv_body([person("P1")], ["iwds_person_id", "status"]))
    assert r.status_code == 422
    problem = r.json()
    assert "lwia_code" in problem["detail"]
    run = await svc.wait_run(problem["run_id"], "refused")
    assert run["counts"]["read"] == 0


async def test_held_run_confirmed_and_discarded_over_http(iwds_service: Service) -> None:
    svc = iwds_service
    admin = svc.staff_headers("admin")
    rows = [person(f"P{i}") for i in range(50)]
    await svc.wait_run((await post_feed(svc, csv_body(rows))).json()["run_id"])
    held = (await post_feed(svc, csv_body(rows[:40]))).json()["run_id"]
    run = await svc.wait_run(held, "held")
    assert run["counts"]["removed"] == 10
    other = (await post_feed(svc, csv_body(rows[:30]))).json()["run_id"]
    await svc.wait_run(other, "held")
    r = await svc.client.post(f"/v1/runs/{other}/discard", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "discarded"
    r = await svc.client.post(f"/v1/runs/{other}/confirm", headers=admin)
    assert r.status_code == 409
    r = await svc.client.post(f"/v1/runs/{held}/confirm", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "done"
    assert await svc.pool.fetchval("SELECT count(*) FROM iwds_people") == 40
    r = await svc.client.post(f"/v1/runs/{uuid.uuid4()}/confirm", headers=admin)
    assert r.status_code == 404


async def test_credentials_are_checked(iwds_service: Service) -> None:
    svc = iwds_service
    body = csv_body([person("P1")])
    # none, wrong signer, expired, wrong scope, staff token, customer token
    assert (await post_feed(svc, body, headers={})).status_code == 401
    from tests.support.keys import TestSigner
    stranger = TestSigner()
    bad = {"Authorization": "Bearer " + stranger.token("x", kind="client", scope="iwds:feed")}
    assert (await post_feed(svc, body, headers=bad)).status_code == 401
    expired = svc.client_headers(exp=int(time.time()) - 60, iat=int(time.time()) - 960)
    assert (await post_feed(svc, body, headers=expired)).status_code == 401
    assert (await post_feed(svc, body, headers=svc.client_headers("other"))).status_code == 403
    admin = svc.staff_headers("admin")
    assert (await post_feed(svc, body, headers=admin)).status_code == 403
    customer = {"Authorization": "Bearer " + svc.signer.token(str(uuid.uuid4()),
                                                               kind="customer")}
    assert (await post_feed(svc, body, headers=customer)).status_code == 403
    # a client token on the admin routes: refused
    feed_client = svc.client_headers()
    assert (await svc.client.get("/v1/runs", headers=feed_client)).status_code == 403
    r = await svc.client.put("/v1/records/P1/account", headers=feed_client,
                             json={"account_id": None})
    assert r.status_code == 403
    # staff without admin
    assert (await svc.client.get("/v1/runs", headers=svc.staff_headers("staff"))
            ).status_code == 403
    assert await svc.pool.fetchval("SELECT count(*) FROM iwds_runs") == 0


async def test_admin_links_a_record_by_hand(iwds_service: Service) -> None:
    svc = iwds_service
    admin = svc.staff_headers("admin")
    await svc.wait_run((await post_feed(svc, csv_body([person("P1")]))).json()["run_id"])
    account = uuid.uuid4()
    r = await svc.client.put("/v1/records/P1/account", headers=admin,
                             json={"account_id": str(account)})
    assert r.status_code == 200 and r.json()["account_id"] == str(account)
    linked = [e for e in await events(svc.pool, "IwdsRecordUpdated")
              if e["account_id"] == str(account)]
    assert len(linked) == 1 and linked[0]["iwds_person_id"] == "P1"
    r = await svc.client.put("/v1/records/NOPE/account", headers=admin,
                             json={"account_id": str(account)})
    assert r.status_code == 404
    r = await svc.client.put("/v1/records/P1/account", headers=admin, json={"account": 1})
    assert r.status_code == 422


async def test_raw_topic_records_out_of_order(iwds_service: Service) -> None:
    svc = iwds_service
    producer = AIOKafkaProducer(bootstrap_servers=svc.bootstrap)
    await producer.start()
    try:
        for records in (
            [person("R1", updated_at="2026-11-03T00:00:00Z", office_code="NEW"),
             {"iwds_person_id": "R2", "ssn": "123-45-6789"}],
            [person("R1", updated_at="2026-11-02T00:00:00Z", office_code="OLD")],
        ):
            env = Envelope.wrap(IwdsRawRecords(feed="participants", records=records),
                                producer="iwds")
            await producer.send_and_wait(broker_topic(IwdsRawRecords.TOPIC), env.to_bytes(),
                                         key=env.subject.encode())
    finally:
        await producer.stop()

    async def both_runs() -> bool:
        return bool(await svc.pool.fetchval(
            "SELECT count(*) = 2 FROM iwds_runs WHERE source = 'topic' AND status = 'done'"))
    await wait_until(both_runs, timeout=30)
    assert await svc.pool.fetchval(
        "SELECT office_code FROM iwds_people WHERE iwds_person_id = 'R1'") == "NEW"
    rejected = await svc.pool.fetch("SELECT iwds_id, reason FROM iwds_rejected")
    assert [(r["iwds_id"], r["reason"]) for r in rejected] == [("R2", "missing lwia_code")]
    assert len(await events(svc.pool, "IwdsRecordUpdated")) == 1
