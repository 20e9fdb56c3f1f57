"""Calling another service on a person's behalf with a token made for it alone.

A person's token names the services it is for (``aud``). A service that calls
another with it (enrollment asking identity, readiness and identity asking groups)
never sends it on as it came: it first narrows it to the callee (RFC 8693 token
exchange at identity: the same person, roles and session, ``aud`` = the callee
only, a few minutes at most). The callee therefore holds a token no other service
accepts, and cannot replay it against a third: identity narrows a token only to
audiences it already names, so a token for groups alone stays one for groups alone.

    auth = NarrowedBearer(TokenExchange(settings.token_endpoint), "groups")
    httpx.AsyncClient(base_url=groups_url, auth=auth)   # the caller's bearer is narrowed

Narrowed tokens are cached per (token, callee) until shortly before they expire,
so a busy route costs identity one exchange per person every few minutes.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Generator
from typing import Any, Protocol

import httpx
import jwt

from shared.servicekit.http import PROBLEM_BASE, Problem

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
# a narrowed token this close to its end is exchanged again before use
RENEW_MARGIN = 30.0


class ExchangeUnavailable(httpx.TransportError):
    """identity could not narrow the token (down, slow, or an unreadable answer): the
    caller's HTTP error handling treats it as the callee being unreachable."""


class Exchanger(Protocol):
    async def for_audience(self, token: str, audience: str) -> str: ...


def audiences(token: str) -> list[str]:
    """The ``aud`` of a token (not verified: the callee verifies it)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return []
    aud = claims.get("aud")
    return [aud] if isinstance(aud, str) else list(aud) if isinstance(aud, list) else []


def session_ended() -> Problem:
    return Problem(401, "Unauthorized", "the token was refused: the session has ended or "
                   "the token expired", type_=PROBLEM_BASE + "unauthorized",
                   headers={"WWW-Authenticate": "Bearer"})


def not_for(audience: str) -> Problem:
    return Problem(403, "Forbidden", f"the token is not for {audience}, which this needs",
                   type_=PROBLEM_BASE + "forbidden")


class TokenExchange:
    """Narrows tokens at identity's token endpoint, with a bounded cache."""

    def __init__(self, token_url: str, *, timeout: float = 2.0, max_entries: int = 10_000,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.token_url, self.timeout, self.max_entries = token_url, timeout, max_entries
        self._transport = transport
        self._cache: OrderedDict[tuple[bytes, str], tuple[str, float]] = OrderedDict()
        self._lock = asyncio.Lock()
        # one client, kept (making an httpx client costs 20-80 ms of CPU: its TLS
        # context), for the event loop it was made in
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = httpx.AsyncClient(timeout=self.timeout, transport=self._transport)
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def for_audience(self, token: str, audience: str) -> str:
        if audiences(token) == [audience]:
            return token  # already made for the callee alone
        key = (hashlib.sha256(token.encode()).digest(), audience)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[1] - RENEW_MARGIN > now:
            return cached[0]
        narrowed, lives = await self._exchange(token, audience)
        async with self._lock:
            self._cache[key] = (narrowed, now + lives)
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return narrowed

    async def _exchange(self, token: str, audience: str) -> tuple[str, float]:
        form = {"grant_type": TOKEN_EXCHANGE, "subject_token": token,
                "subject_token_type": ACCESS_TOKEN_TYPE, "audience": audience}
        try:
            r = await self._http().post(self.token_url, data=form)
        except httpx.TimeoutException:
            raise  # the caller answers as if its callee was too slow (it cannot be asked)
        except httpx.HTTPError as exc:
            raise ExchangeUnavailable(f"identity unreachable: {type(exc).__name__}") from None
        if r.status_code in (401, 403):
            # the caller's own token is no longer good (revoked, expired)
            raise session_ended()
        if r.status_code in (400, 422):
            raise not_for(audience)
        if r.status_code != 200:
            raise ExchangeUnavailable(f"identity answered {r.status_code} to an exchange")
        try:
            body = r.json()
            return str(body["access_token"]), float(body["expires_in"])
        except (ValueError, KeyError, TypeError):
            raise ExchangeUnavailable("identity's exchange answer is unreadable") from None


class NarrowedBearer(httpx.Auth):
    """httpx auth: the request's bearer token replaced by one narrowed to ``audience``."""

    def __init__(self, exchanger: Exchanger, audience: str) -> None:
        self.exchanger, self.audience = exchanger, audience

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, Any, None]:
        raise RuntimeError("NarrowedBearer works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            narrowed = await self.exchanger.for_audience(token.strip(), self.audience)
            request.headers["Authorization"] = f"Bearer {narrowed}"
        yield request
