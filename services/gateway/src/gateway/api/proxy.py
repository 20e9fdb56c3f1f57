"""`/api/<service>/...`: forwards a request to the service, bodies streamed both ways."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from gateway import service
from gateway.api.web import client_address
from gateway.deps import Deps
from gateway.domain import HOP_HEADERS, limited_scope
from shared.servicekit.http import PROBLEM_BASE, REQUEST_ID_HEADER, Problem
from shared.servicekit.logs import correlation_id
from shared.servicekit.runtime import Pool, get_deps

log = structlog.get_logger(__name__)
router = APIRouter(tags=["proxy"])
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# the answer's length stays (its bytes pass unchanged); the request id is set by the kit
# an answer of a known length up to this is read whole before it is passed on
SMALL_ANSWER = 64 * 1024
ANSWER_DROPS = (HOP_HEADERS - {"content-length"}) | {REQUEST_ID_HEADER, "set-cookie"}


def _forward_headers(request: Request) -> list[tuple[str, str]]:
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_HEADERS
               and k.lower() != REQUEST_ID_HEADER]
    headers.append((REQUEST_ID_HEADER, correlation_id.get() or ""))
    headers.append(("x-forwarded-for", client_address(request)))
    return headers


@router.api_route("/api/{name}/{path:path}", methods=METHODS, response_model=None,
                  include_in_schema=False)
async def forward(
    name: str, path: str, request: Request, pool: Pool,
    deps: Annotated[Deps, Depends(get_deps)],
) -> Response:
    if name not in deps.direct:
        raise Problem(404, "Not found", f"no service is called {name!r}")
    method = request.method
    scope = limited_scope(name, path, method)
    if scope is not None:
        await service.count_attempt(pool, deps, scope, client_address(request))
    has_body = method in ("POST", "PUT", "PATCH")
    query = request.scope.get("query_string", b"").decode("latin-1")
    target = "/" + path + (f"?{query}" if query else "")
    sent_headers = _forward_headers(request)
    try:
        try:
            answer = await service.send(deps, name, method, target, headers=sent_headers,
                                        content=request.stream() if has_body else None,
                                        stream=True)
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
            if has_body:  # a streamed body cannot be sent twice
                raise
            # a keep-alive connection the service closed as it was reused: once more
            answer = await service.send(deps, name, method, target, headers=sent_headers,
                                        stream=True)
    except httpx.TransportError as exc:
        log.warning("upstream_unavailable", service=name, error=type(exc).__name__)
        raise Problem(503, "Service unavailable", f"{name} is unavailable; try again shortly",
                      type_=PROBLEM_BASE + "service-unavailable",
                      service=name, headers={"Retry-After": "5"}) from None
    headers: dict[str, Any] = {k: v for k, v in answer.headers.items()
                               if k.lower() not in ANSWER_DROPS}
    length = answer.headers.get("content-length", "")
    if length.isdigit() and int(length) <= SMALL_ANSWER:
        # most answers are a page of JSON: read whole, they go out in one write and the
        # connection is back in the pool before the client has read them
        try:
            body = b"".join([chunk async for chunk in answer.aiter_raw()])
        finally:
            await answer.aclose()
        return Response(body, status_code=answer.status_code, headers=headers)
    return StreamingResponse(answer.aiter_raw(), status_code=answer.status_code,
                             headers=headers, background=BackgroundTask(answer.aclose))
