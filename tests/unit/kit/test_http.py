"""Problem details (RFC 9457) and the request id middleware, through a real
FastAPI app over ASGI."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from shared.servicekit.errors import DomainError
from shared.servicekit.http import (
    PROBLEM_JSON,
    Problem,
    RequestIdMiddleware,
    install_problem_handlers,
)
from shared.servicekit.logs import configure_logging, correlation_id

SSN = "123-45-6789"


class NewCustomer(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    birth_date: date
    age: int = Field(ge=16)


def make_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)
    install_problem_handlers(app)

    @app.post("/customers", status_code=201)
    async def add(body: NewCustomer) -> dict[str, Any]:
        return {"name": body.name, "request_id": correlation_id.get()}

    @app.get("/customers/{customer_id}")
    async def get(customer_id: uuid.UUID) -> dict[str, str]:
        return {"id": str(customer_id)}

    @app.post("/conflict")
    async def conflict() -> None:
        existing = uuid.UUID(int=7)
        raise Problem(
            409, "Already a customer", "This person already has an account.",
            type_="https://csc.example/problems/duplicate", existing_id=existing,
            candidates=["a", "b"],
        )

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418, "short and stout")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"database password is hunter2, ssn {SSN}")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def assert_problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert body["title"]
    assert "type" in body
    return body


async def test_valid_body_is_accepted(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/customers", json={"name": "Ann", "birth_date": "1990-01-02", "age": 30}
    )
    assert resp.status_code == 201
    assert resp.json()["name"] == "Ann"


async def test_invalid_body_names_each_bad_field_and_echoes_no_value(
    client: httpx.AsyncClient,
) -> None:
    resp = await client.post(
        "/customers",
        json={"name": "Ann", "birth_date": SSN, "age": "123456789x"},
        headers={"x-request-id": "req-422"},
    )
    body = assert_problem(resp, 422)
    assert body["request_id"] == "req-422"
    assert body["instance"] == "/customers"
    fields = {e["field"]: e["reason"] for e in body["errors"]}
    assert set(fields) == {"birth_date", "age"}
    assert all(reason for reason in fields.values())
    assert "date" in fields["birth_date"].lower()
    assert "integer" in fields["age"].lower()
    assert "6789" not in resp.text
    assert "input" not in resp.text


async def test_missing_fields_are_named(client: httpx.AsyncClient) -> None:
    resp = await client.post("/customers", json={"age": 10})
    body = assert_problem(resp, 422)
    fields = {e["field"]: e["reason"] for e in body["errors"]}
    assert set(fields) == {"name", "birth_date", "age"}
    assert "required" in fields["name"].lower()
    assert "16" in fields["age"]


async def test_malformed_json_is_a_422_problem(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/customers", content=b'{"name": "123-45-6789', headers={"content-type": "application/json"}
    )
    body = assert_problem(resp, 422)
    assert body["errors"]
    assert "6789" not in resp.text


async def test_bad_path_parameter_is_named(client: httpx.AsyncClient) -> None:
    resp = await client.get(f"/customers/{SSN}")
    body = assert_problem(resp, 422)
    assert [e["field"] for e in body["errors"]] == ["customer_id"]
    assert "6789" not in resp.text


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    resp = await client.get("/nowhere")
    body = assert_problem(resp, 404)
    assert body["instance"] == "/nowhere"
    assert resp.headers["x-request-id"]


async def test_ssn_in_an_unknown_url_is_not_echoed(client: httpx.AsyncClient) -> None:
    resp = await client.get(f"/people/{SSN}")
    assert_problem(resp, 404)
    assert "6789" not in resp.text


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    resp = await client.delete("/customers")
    assert_problem(resp, 405)
    assert "POST" in resp.headers["allow"]


async def test_http_exception_keeps_its_status_and_detail(client: httpx.AsyncClient) -> None:
    resp = await client.get("/teapot")
    body = assert_problem(resp, 418)
    assert body["detail"] == "short and stout"
    assert body["title"] == "I'm a Teapot"


async def test_problem_carries_its_extra_fields(client: httpx.AsyncClient) -> None:
    resp = await client.post("/conflict", headers={"x-request-id": "req-409"})
    body = assert_problem(resp, 409)
    assert body == {
        "type": "https://csc.example/problems/duplicate",
        "title": "Already a customer",
        "status": 409,
        "detail": "This person already has an account.",
        "instance": "/conflict",
        "request_id": "req-409",
        "existing_id": str(uuid.UUID(int=7)),
        "candidates": ["a", "b"],
    }
    assert resp.headers["x-request-id"] == "req-409"


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    buf = io.StringIO()
    configure_logging("demo", env="prod", fmt="json", stream=buf)
    yield buf
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


async def test_unexpected_error_is_a_500_problem_without_its_text(
    client: httpx.AsyncClient, log_buffer: io.StringIO
) -> None:
    resp = await client.get("/boom", headers={"x-request-id": "req-500"})
    body = assert_problem(resp, 500)
    assert "hunter2" not in resp.text
    assert "RuntimeError" not in resp.text
    assert "6789" not in resp.text
    # The request id still reaches the caller and the log line, so the two
    # can be matched up.
    assert resp.headers["x-request-id"] == "req-500"
    assert body["request_id"] == "req-500"
    lines = [json.loads(line) for line in log_buffer.getvalue().splitlines()]
    errors = [line for line in lines if line["event"] == "unhandled_error"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "req-500"
    assert errors[0]["path"] == "/boom"
    assert "RuntimeError" in errors[0]["exception"]
    assert "6789" not in log_buffer.getvalue()


async def test_request_id_is_echoed_when_sent(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/customers",
        json={"name": "Ann", "birth_date": "1990-01-02", "age": 30},
        headers={"x-request-id": "abc-123:retry.2"},
    )
    assert resp.headers["x-request-id"] == "abc-123:retry.2"
    assert resp.json()["request_id"] == "abc-123:retry.2"
    assert correlation_id.get() is None  # not leaked out of the request


async def test_request_id_is_generated_when_absent(client: httpx.AsyncClient) -> None:
    first = await client.get("/nowhere")
    second = await client.get("/nowhere")
    rid = first.headers["x-request-id"]
    assert len(rid) >= 16
    assert rid == first.json()["request_id"]
    assert rid != second.headers["x-request-id"]
    assert len(first.headers.get_list("x-request-id")) == 1


@pytest.mark.parametrize(
    "bad",
    [
        "has spaces in it",
        "line\nbreak",
        "trailing-newline\n",
        "x" * 129,
        "semi;colon",
        "",
    ],
)
async def test_malicious_request_id_is_replaced(bad: str) -> None:
    # Sent straight through ASGI: an HTTP client would refuse some of these.
    app = make_app()
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": "/nowhere", "raw_path": b"/nowhere",
        "query_string": b"", "root_path": "", "server": ("test", 80), "client": ("c", 1),
        "headers": [(b"host", b"test"), (b"x-request-id", bad.encode("latin-1"))],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    assert start["status"] == 404
    ids = [v.decode() for k, v in start["headers"] if k.lower() == b"x-request-id"]
    assert len(ids) == 1
    assert ids[0] != bad
    assert ids[0].isalnum() and len(ids[0]) <= 128
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert body["request_id"] == ids[0]


async def test_longest_good_request_id_is_kept(client: httpx.AsyncClient) -> None:
    rid = "a" * 128
    resp = await client.get("/nowhere", headers={"x-request-id": rid})
    assert resp.headers["x-request-id"] == rid


class Overbooked(DomainError):
    pass


def _domain_app(mapper: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestIdMiddleware)
    install_problem_handlers(app, mapper)

    @app.post("/book")
    async def book() -> None:
        raise Overbooked("the class is full")

    return app


async def test_a_domain_error_that_rises_from_a_route_is_answered_by_the_service_mapper(
) -> None:
    def mapper(exc: DomainError) -> Problem:
        return Problem(409, "Conflict", str(exc), type_="https://x/full", seats=0)

    transport = httpx.ASGITransport(app=_domain_app(mapper), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post("/book")
    assert r.status_code == 409
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json() | {"request_id": None} == {
        "type": "https://x/full", "title": "Conflict", "status": 409,
        "detail": "the class is full", "instance": "/book", "seats": 0, "request_id": None}


async def test_without_a_mapper_a_domain_error_is_an_internal_error() -> None:
    transport = httpx.ASGITransport(app=_domain_app(None), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.post("/book")
    assert r.status_code == 500 and "full" not in r.text
