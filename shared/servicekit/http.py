"""HTTP plumbing: RFC 9457 problem details and the request id middleware."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.servicekit.errors import (
    Conflict,
    DatabaseBusy,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyRequests,
)
from shared.servicekit.logs import correlation_id, redact

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://csc.example/problems/"
REQUEST_ID_HEADER = "x-request-id"
# Matched with fullmatch: "$" would let a trailing newline through.
_GOOD_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class Problem(Exception):
    """An error answered as problem details. Raise it from ``api.py``."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.type, self.extra = (
            status, title, detail, type_, extra,
        )
        self.headers = headers


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    # Free text and the path are masked: a caller may have put an SSN in a URL.
    body: dict[str, Any] = {"type": type_, "title": redact(title), "status": status}
    if detail:
        body["detail"] = redact(detail)
    if instance:
        body["instance"] = redact(instance)
    rid = correlation_id.get()
    if rid:
        body["request_id"] = rid
    body.update(extra)
    return JSONResponse(
        jsonable_encoder(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def _field_of(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_errors(errors: list[Any]) -> list[dict[str, str]]:
    """Pydantic errors as ``{field, reason}``; input values are never echoed."""
    out = []
    for err in errors:
        reason = str(err.get("msg", "invalid value"))
        # A dict key or an extra field name in ``loc`` comes from the caller.
        field = redact(_field_of(err.get("loc", ())))
        out.append({"field": field, "reason": redact(reason)})
    return out


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _internal_error(path: str, exc: BaseException) -> JSONResponse:
    log.error("unhandled_error", path=path, exc_info=exc)
    return problem_response(
        500, "Internal error", "Something went wrong on our side.", instance=path,
    )


def standard_problem(exc: DomainError) -> Problem | None:
    """The kit's own domain errors as problems; None for a service's own kinds."""
    if isinstance(exc, InvalidInput):
        return Problem(422, "Invalid request", "One or more fields are invalid.",
                       type_=PROBLEM_BASE + "validation",
                       errors=[{"field": e.field, "reason": e.reason} for e in exc.errors])
    if isinstance(exc, NotFound):
        return Problem(404, "Not found", str(exc))
    if isinstance(exc, Conflict):
        where: dict[str, Any] = {} if exc.field is None else {"field": exc.field}
        return Problem(409, "Conflict", str(exc), type_=PROBLEM_BASE + exc.code,
                       **where, **exc.extra)
    if isinstance(exc, Forbidden):
        return Problem(403, "Forbidden", exc.reason, type_=PROBLEM_BASE + exc.code)
    if isinstance(exc, DatabaseBusy):
        return Problem(503, "Service busy", "Every database connection is in use; try again "
                       "in a moment.", type_=PROBLEM_BASE + "database-busy",
                       headers={"Retry-After": "1"})
    if isinstance(exc, TooManyRequests):
        return Problem(429, "Too many requests", exc.reason,
                       type_=PROBLEM_BASE + "rate-limited",
                       headers={"Retry-After": str(exc.retry_after)})
    return None


def install_problem_handlers(
    app: FastAPI, domain: Callable[[DomainError], Problem | None] | None = None
) -> None:
    """RFC 9457 answers for every error. A DomainError goes first to ``domain``, the
    service's own map (None: not one of its kinds), then to :func:`standard_problem`,
    so routes let domain errors rise instead of catching each one."""
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(
            exc.status, exc.title, exc.detail, type_=exc.type,
            instance=request.url.path, headers=exc.headers, **exc.extra,
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(
            422, "Invalid request", "One or more fields are invalid.",
            type_=PROBLEM_BASE + "validation", instance=request.url.path,
            errors=validation_errors(list(exc.errors())),
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else None
        title = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized",
                 403: "Forbidden"}.get(exc.status_code) or _phrase(exc.status_code)
        return problem_response(
            exc.status_code, title, detail, instance=request.url.path,
            headers=dict(exc.headers) if exc.headers else None,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Reached only without RequestIdMiddleware, which answers first.
        return _internal_error(request.url.path, exc)

    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        problem = (domain(exc) if domain is not None else None) or standard_problem(exc)
        if problem is None:
            return _internal_error(request.url.path, exc)
        return await on_problem(request, problem)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


class RequestIdMiddleware:
    """Takes ``X-Request-ID`` (or makes one), binds it for logs and events,
    and returns it on the response. Plain ASGI: no per-request task overhead."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                # an id shaped like an SSN would travel into logs and events: replace it
                good = _GOOD_ID.fullmatch(candidate) and redact(candidate) == candidate
                rid = candidate if good else None
                break
        rid = rid or uuid.uuid4().hex
        token = correlation_id.set(rid)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Starlette answers an unhandled error outside every middleware,
            # after this one has unbound the request id: answer here instead,
            # so the 500 and its log line carry the id.
            if started:
                raise
            response = _internal_error(str(scope.get("path", "")), exc)
            await response(scope, receive, send_with_id)
        finally:
            correlation_id.reset(token)
