"""The form's SSN goes to identity and nowhere else: not in a log line, an answer, the
outbox, a table of this service, or the broker. Offense data is in no event."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator

import httpx
import pytest

from shared.servicekit.logs import configure_logging
from shared.servicekit.topics import broker_topic
from tests.integration.enrollment.conftest import Stack, form
from tests.integration.enrollment.helpers import match, submit
from tests.integration.identity.test_pii import read_topic
from tests.support.kit import wait_until

SSN = "219-09-9999"
FORMS = (SSN, SSN.replace("-", ""), "219 09 9999")


def leaks(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [f for f in FORMS if f in text]


@pytest.fixture
def logs(stack: Stack) -> Iterator[io.StringIO]:
    """Every log line of both services (in this process) from now on, as JSON."""
    buffer = io.StringIO()
    configure_logging("enrollment", env="test", fmt="json", level="DEBUG", stream=buffer)
    yield buffer
    configure_logging("tests", env="test", stream=sys.stdout)


async def test_the_ssn_never_comes_out(stack: Stack, logs: io.StringIO) -> None:
    staff = await stack.reentry_worker()
    out: list[httpx.Response] = []

    async def keep(r: httpx.Response) -> httpx.Response:
        out.append(r)
        return r

    h = staff.headers
    assert (await keep(await match(stack, staff))).status_code == 200
    created = await keep(await submit(stack, staff, key="k1"))
    assert created.status_code == 201
    assert (await keep(await submit(stack, staff, key="k1"))).status_code == 201
    # the same person again: a candidate (SSN as last four), a 409, then linked
    again = form(idoc_number="K54321", idoc_number_confirmation="K54321")
    r = await keep(await match(stack, staff, again))
    assert r.json()["candidates"][0]["ssn_last4"] == "9999"
    assert (await keep(await submit(stack, staff, again))).status_code == 409
    r = await keep(await submit(stack, staff, {
        **again, "link_account_id": created.json()["account_id"]}))
    assert r.status_code == 409  # that account already has an open enrollment
    for bad in ({"ssn": SSN + "1"}, {"ssn": "x" + SSN}, {"ssn": SSN * 3},
                {"ssn": 219099999}, {"ssn_confirmation": "219-09-9998"},
                {SSN: "a field named by it"}, {"first_name": ""}):
        for step in (match, submit):
            assert (await keep(await step(stack, staff, form(**bad)))).status_code == 422
    for path in (f"/v1/returning-citizens/{SSN}", f"/v1/returning-citizens/{FORMS[1]}"):
        assert (await keep(await stack.client.get(path, headers=h))).status_code == 422
    r = await keep(await stack.client.get("/v1/returning-citizens", headers=h,
                                          params={"q": SSN}))
    assert r.status_code == 200
    r = await keep(await stack.client.post(
        "/v1/returning-citizens/matches", json=form(),
        headers={**h, "X-Request-ID": SSN}))
    assert r.status_code == 200
    enrollment_id = created.json()["enrollment_id"]
    r = await keep(await stack.client.get(f"/v1/returning-citizens/{enrollment_id}", headers=h))
    assert r.status_code == 200
    await stack.identity.stop()  # and while identity is away
    assert (await keep(await submit(stack, staff, form(
        idoc_number="Q11111", idoc_number_confirmation="Q11111")))).status_code == 503
    await wait_until(stack.all_published, timeout=20)

    for r in out:
        where = f"{r.request.method} {r.request.url.path} -> {r.status_code}"
        assert not leaks(r.text), (where, r.text)
        assert not leaks(str(r.headers.raw)), where

    lines = logs.getvalue().splitlines()
    assert any("identity_unreachable" in line for line in lines)  # the capture works
    assert len(lines) > 20
    assert not [line for line in lines if leaks(line)]

    tables = await stack.pool.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    assert len(tables) > 10
    for t in tables:
        rows = await stack.pool.fetch(f'SELECT x::text AS row FROM "{t["table_name"]}" x')
        assert not [x["row"] for x in rows if leaks(x["row"])], t["table_name"]
    values = await stack.pool.fetch("SELECT event_type, value FROM outbox")
    assert {v["event_type"] for v in values} >= {"CustomerEnrolled", "ProgramStaffAuthorized"}
    for v in values:
        assert not leaks(bytes(v["value"]))
        for offense in (b"burglary", b"drug-possession", b"offense"):
            assert offense not in bytes(v["value"])

    for topic in ("enrollment.enrollments.v1", "enrollment.programs.v1"):
        for record in await read_topic(stack.servers.bootstrap, broker_topic(topic)):
            assert not leaks(record.value) and not leaks(record.key or b"")
            assert b"burglary" not in record.value
            assert not any(leaks(v or b"") for _, v in record.headers)
