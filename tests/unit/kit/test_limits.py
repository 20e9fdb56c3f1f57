"""The kit's body limit: 413 before the route reads a body over the limit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from shared.servicekit.http import RequestIdMiddleware, install_problem_handlers
from shared.servicekit.limits import BodyLimitMiddleware

LIMIT = 2048


def _app() -> tuple[FastAPI, list[int]]:
    app = FastAPI()
    seen: list[int] = []

    @app.post("/v1/things")
    async def things(request: Request) -> dict[str, int]:
        body = await request.body()
        seen.append(len(body))
        return {"bytes": len(body)}

    @app.post("/v1/feeds/things")
    async def feed(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"bytes": size}

    app.add_middleware(BodyLimitMiddleware, max_bytes=LIMIT, exempt=("/v1/feeds/",))
    app.add_middleware(RequestIdMiddleware)
    install_problem_handlers(app)
    return app, seen


async def _chunks(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // 512):
        yield b"x" * 512


@pytest.fixture
def client() -> tuple[httpx.AsyncClient, list[int]]:
    app, seen = _app()
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t"), seen


async def test_a_body_within_the_limit_reaches_the_route(client) -> None:  # type: ignore[no-untyped-def]
    http, seen = client
    r = await http.post("/v1/things", content=b"x" * LIMIT)
    assert r.status_code == 200 and r.json() == {"bytes": LIMIT}
    assert seen == [LIMIT]


async def test_a_declared_length_over_the_limit_is_413_and_never_read(client) -> None:  # type: ignore[no-untyped-def]
    http, seen = client
    r = await http.post("/v1/things", content=b"x" * (LIMIT + 1))
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["title"] == "Request body too large" and str(LIMIT) in r.json()["detail"]
    assert seen == []


async def test_a_streamed_body_over_the_limit_is_413(client) -> None:  # type: ignore[no-untyped-def]
    http, seen = client
    r = await http.post("/v1/things", content=_chunks(LIMIT * 4))
    assert r.status_code == 413
    assert seen == []


async def test_feed_routes_stream_past_the_limit(client) -> None:  # type: ignore[no-untyped-def]
    http, _ = client
    r = await http.post("/v1/feeds/things", content=_chunks(LIMIT * 4))
    assert r.status_code == 200 and r.json() == {"bytes": LIMIT * 4}
