"""Limits every service keeps: request body size, and rates per caller.

Body size: a request whose body is larger than the limit is answered 413 (a
problem) before the route reads it, whether it says its length
(``Content-Length``) or streams it (chunked). Routes that take a feed stream
their body and set their own limit (``BodyLimitMiddleware(exempt=...)``).

Rates: fixed windows counted in PostgreSQL (kit migration 0010), so every
instance of a service shares the count; one statement per check. A hit answers
429 with ``Retry-After`` (:class:`~shared.servicekit.errors.TooManyRequests`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.servicekit.db import Connection
from shared.servicekit.errors import TooManyRequests
from shared.servicekit.http import problem_response

DEFAULT_MAX_BODY = 1024 * 1024


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for a body over ``max_bytes`` (paths starting with an ``exempt`` prefix
    are left to their route)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int | None = None, exempt: Sequence[str] = ()
    ) -> None:
        # None: the running service's setting (app.state.settings.max_body_bytes)
        self.app, self.fixed, self.exempt = app, max_bytes, tuple(exempt)
        self.max_bytes = max_bytes or DEFAULT_MAX_BODY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        if self.fixed is None:
            settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
            self.max_bytes = getattr(settings, "max_body_bytes", DEFAULT_MAX_BODY)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413, "Request body too large",
            f"the body may be at most {self.max_bytes} bytes",
            instance=str(scope.get("path", "")),
        )
        await response(scope, receive, send)


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` hits per ``window``."""

    limit: int
    window: timedelta

    @classmethod
    def per_minute(cls, limit: int) -> Rate:
        return cls(limit, timedelta(minutes=1))

    @classmethod
    def per_day(cls, limit: int) -> Rate:
        return cls(limit, timedelta(days=1))


async def hit(
    conn: Connection, scope: str, key: str, rates: Sequence[Rate], now: datetime
) -> None:
    """Count one hit of ``key`` (a caller: staff id, client address) in ``scope``
    (what is limited) against each rate; TooManyRequests when one is exceeded.
    The counts commit with the caller's transaction, so run it in one that
    commits even when the request then fails (or in its own)."""
    for rate in rates:
        seconds = int(rate.window.total_seconds())
        start = int(now.timestamp()) // seconds * seconds
        count = await conn.fetchval(
            "INSERT INTO rate_limits (scope, key, window_seconds, window_start, hits)"
            " VALUES ($1, $2, $3, $4, 1)"
            " ON CONFLICT (scope, key, window_seconds, window_start)"
            " DO UPDATE SET hits = rate_limits.hits + 1 RETURNING hits",
            scope, key, seconds, start,
        )
        if count > rate.limit:
            retry = max(1, math.ceil(start + seconds - now.timestamp()))
            raise TooManyRequests(
                f"at most {rate.limit} per {_window_text(seconds)}", retry_after=retry
            )


async def forget_old(conn: Connection, now: datetime, keep: timedelta = timedelta(days=2)) -> int:
    """Drop windows that ended long ago; returns how many."""
    status = await conn.execute(
        "DELETE FROM rate_limits WHERE window_start + window_seconds < $1",
        int((now - keep).timestamp()),
    )
    return int(status.split()[-1])


def _window_text(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds} seconds"
