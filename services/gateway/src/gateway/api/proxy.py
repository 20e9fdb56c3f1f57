"""`/api/<service>/...`: forwards a request to the service, bodies streamed both ways.

A plain ASGI endpoint placed first among the routes: a forwarded call costs no
FastAPI dependency solving, no Request or Response objects and no header dicts. The
kit's middleware still wraps it (the request id, the body cap), the anonymous doors
are still counted per client address, and the bytes of the path, query, headers and
bodies pass as they came, less the hop-by-hop headers and the browser's cookies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import structlog
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway import service
from gateway.domain import HOP_HEADERS, limited_scope
from gateway.upstream import Answer, Upstream, UpstreamError
from shared.servicekit.http import PROBLEM_BASE, REQUEST_ID_HEADER, Problem
from shared.servicekit.logs import correlation_id

log = structlog.get_logger(__name__)
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
# an answer of a known length up to this is read whole and goes out in one write
SMALL_ANSWER = 64 * 1024
# "expect": the client's 100-continue is the gateway's business, not the service's
REQUEST_DROPS = frozenset(h.encode() for h in HOP_HEADERS | {REQUEST_ID_HEADER, "expect"})
# the answer's length stays (its bytes pass unchanged); the request id is set by the
# kit; the gateway's server writes its own Date and Server
ANSWER_DROPS = frozenset(h.encode() for h in (HOP_HEADERS - {"content-length"})
                         | {REQUEST_ID_HEADER, "set-cookie", "date", "server"})


def unavailable(name: str) -> Problem:
    return Problem(503, "Service unavailable", f"{name} is unavailable; try again shortly",
                   type_=PROBLEM_BASE + "service-unavailable", service=name,
                   headers={"Retry-After": "5"})


async def _body(first: bytes, receive: Receive) -> AsyncIterator[bytes]:
    """The rest of a request body as it arrives (the kit's cap counts it on the way)."""
    yield first
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise UpstreamError("the client went away while sending its body")
        yield message.get("body", b"")
        if not message.get("more_body"):
            return


async def forward(scope: Scope, receive: Receive, send: Send) -> None:
    runtime = scope["app"].state.runtime
    deps = runtime.deps
    name: str = scope["path_params"]["name"]
    up: Upstream | None = deps.lean.get(name)
    if up is None:
        raise Problem(404, "Not found", f"no service is called {name!r}")
    method: str = scope["method"]
    path: str = scope["path_params"]["path"]
    client = scope["client"][0] if scope.get("client") else "unknown"
    limited = limited_scope(name, path, method)
    if limited is not None:
        await service.count_attempt(runtime.pool, deps, limited, client)
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    prefix = b"/api/" + name.encode()
    target = raw[len(prefix):] if raw.startswith(prefix + b"/") else ("/" + path).encode()
    if scope["query_string"]:
        target += b"?" + scope["query_string"]
    headers = [(k, v) for k, v in scope["headers"] if k not in REQUEST_DROPS]
    headers.append((b"x-request-id", (correlation_id.get() or "").encode()))
    headers.append((b"x-forwarded-for", client.encode()))
    body: bytes | AsyncIterator[bytes] | None = None
    length: int | None = None
    if method in WITH_BODY:
        first = await receive()
        if first["type"] != "http.request":
            return  # the client went away
        if first.get("more_body"):
            declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
            length = int(declared) if declared.isdigit() else None
            body = _body(first.get("body", b""), receive)
        else:
            body = first.get("body", b"")
    try:
        answer = await up.request(method, target, headers, body, length=length,
                                  whole_up_to=SMALL_ANSWER)
    except UpstreamError as exc:
        log.warning("upstream_unavailable", service=name, error=str(exc))
        raise unavailable(name) from None
    await _answer(answer, send)


async def _answer(answer: Answer, send: Send) -> None:
    out = [(k, v) for k, v in answer.headers if k not in ANSWER_DROPS]
    await send({"type": "http.response.start", "status": answer.status, "headers": out})
    if answer.body is not None:
        await send({"type": "http.response.body", "body": answer.body})
        return
    try:
        async for chunk in answer.stream():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        await answer.aclose()
    await send({"type": "http.response.body", "body": b""})


class _Endpoint:
    """Starlette calls a class instance as a plain ASGI app (not a request handler)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        await forward(scope, receive, send)


route = Route("/api/{name}/{path:path}", _Endpoint(), methods=METHODS,
              include_in_schema=False)
