"""The gateway's use cases: page sessions over identity's tokens, calls to the
services on a signed-in person's behalf, and Add Customer forms between steps."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from json import dumps
from typing import Any
from urllib.parse import quote, urlencode

import asyncpg
import httpx
import structlog

from gateway import repository as repo
from gateway.deps import Deps
from gateway.domain import PageSession, cookie_hash, new_cookie, new_csrf
from gateway.upstream import UpstreamError
from shared.servicekit.auth import PASSWORD_CHANGE_SCOPE, JwksVerifier, TokenError
from shared.servicekit.db import transaction
from shared.servicekit.http import REQUEST_ID_HEADER
from shared.servicekit.limits import Rate, hit
from shared.servicekit.logs import correlation_id

log = structlog.get_logger(__name__)
# an access token this close to its end is refreshed before use
REFRESH_MARGIN = timedelta(seconds=30)


class Unavailable(Exception):
    """A service did not answer (down, or too slow)."""

    def __init__(self, service: str) -> None:
        super().__init__(f"{service} is unavailable")
        self.service = service


class ApiError(Exception):
    """A service answered with a problem."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status}: {problem.get('title')}")
        self.status, self.problem = status, problem

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or self.problem.get("title") or "failed")


class SignInFailed(Exception):
    pass


@dataclass(frozen=True)
class SignedIn:
    cookie: str
    session: PageSession
    ended: str | None  # who was signed out first, if anyone


def _headers(token: str | None = None) -> dict[str, str]:
    headers = {}
    rid = correlation_id.get()
    if rid:
        headers[REQUEST_ID_HEADER] = rid
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def send(
    deps: Deps, service: str, method: str, path: str, *, headers: Any = None,
    content: Any = None, json: Any = None, data: dict[str, str] | None = None,
    params: dict[str, Any] | None = None, stream: bool = False,
) -> httpx.Response:
    """One request straight to the service's pooled transport (httpx errors pass up).
    With ``stream`` the caller reads the body and closes the answer."""
    up = deps.direct[service]
    request = httpx.Request(method, up.base + path, params=params, headers=headers,
                            content=content, json=json, data=data,
                            extensions={"timeout": up.timeout})
    response = await up.transport.handle_async_request(request)
    response.request = request
    if not stream:
        try:
            await response.aread()
        finally:
            await response.aclose()
    return response


def _query_value(v: Any) -> str:
    # as httpx writes them: true/false, an empty string for None
    return "true" if v is True else "false" if v is False else "" if v is None else str(v)


def _target(path: str, params: dict[str, Any] | None) -> bytes:
    """The path (percent-encoded where it must be) and the query, for the request line."""
    target = quote(path, safe="/%:@!$&'()*+,;=~")
    if params:
        pairs = [(k, _query_value(x)) for k, v in params.items()
                 for x in (v if isinstance(v, (list, tuple)) else [v])]
        target += "?" + urlencode(pairs)
    return target.encode("ascii")


async def _lean(deps: Deps, service: str, method: str, target: bytes,
                headers: list[tuple[bytes, bytes]], body: bytes | None) -> httpx.Response:
    up = deps.lean[service]
    answer = await up.request(method, target, headers, body, whole_up_to=1 << 62)
    content = answer.body
    if content is None:  # of unknown length (chunked): read to its end
        content = b"".join([chunk async for chunk in answer.stream()])
    return httpx.Response(answer.status, headers=answer.headers, content=content)


async def call(
    deps: Deps, service: str, method: str, path: str, *, token: str | None = None,
    json: Any = None, data: dict[str, str] | None = None, params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One call to a service over its lean keep-alive pool (the answer read whole);
    Unavailable when it cannot be reached."""
    sent = {**_headers(token), **(headers or {})}
    body: bytes | None = None
    if json is not None:
        body = dumps(json, ensure_ascii=False, separators=(",", ":"),
                     allow_nan=False).encode()
        sent["content-type"] = "application/json"
    elif data is not None:
        body = urlencode(data).encode()
        sent["content-type"] = "application/x-www-form-urlencoded"
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in sent.items()]
    try:
        return await _lean(deps, service, method, _target(path, params), raw, body)
    except UpstreamError as exc:
        log.warning("upstream_unavailable", service=service, error=str(exc))
        raise Unavailable(service) from None


def _problem(r: httpx.Response) -> ApiError:
    try:
        body = r.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    body.setdefault("title", r.reason_phrase)
    return ApiError(r.status_code, body)


async def api(
    deps: Deps, session: PageSession, service: str, method: str, path: str, **kw: Any
) -> Any:
    """A call with the session's token; the answer's JSON, or ApiError."""
    r = await call(deps, service, method, path, token=session.access_token, **kw)
    if r.status_code >= 400:
        raise _problem(r)
    if r.status_code == 204 or not r.content:
        return None
    if r.headers.get("content-type", "").startswith("text/html"):
        return r.text
    return r.json()


REFERENCE_TTL = 300.0  # seconds a reference list is reused


async def reference(deps: Deps, session: PageSession, kind: str) -> list[dict[str, Any]]:
    """Enrollment's reference list (the same for every staff member), kept a few minutes."""
    now = time.monotonic()
    cached = deps.cache.get(kind)
    if cached is not None and now - cached[0] < REFERENCE_TTL:
        items: list[dict[str, Any]] = cached[1]
        return items
    found = await api(deps, session, "enrollment", "GET", f"/v1/reference/{kind}")
    deps.cache[kind] = (now, found["items"])
    return list(found["items"])


# -- rates ---------------------------------------------------------------------------


async def count_attempt(pool: asyncpg.Pool, deps: Deps, scope: str, client: str) -> None:
    """One attempt at an anonymous door; TooManyRequests past the limit (own transaction:
    the count stays even when the attempt then fails)."""
    async with transaction(pool) as conn:
        await hit(conn, scope, client,
                  [Rate.per_minute(deps.settings.auth_rate_per_minute)], deps.clock.now())


# -- sessions --------------------------------------------------------------------------


def _seal_tokens(deps: Deps, sid: uuid.UUID, access: str, refresh: str | None
                 ) -> tuple[bytes, bytes | None]:
    ctx = sid.bytes
    return (deps.sealer.seal(access.encode(), ctx),
            deps.sealer.seal(refresh.encode(), ctx) if refresh else None)


async def sign_in(
    pool: asyncpg.Pool, deps: Deps, verifier: JwksVerifier, *, username: str, password: str,
    client: str, current: PageSession | None,
) -> SignedIn:
    await count_attempt(pool, deps, "gateway:signin", client)
    r = await call(deps, "identity", "POST", "/v1/auth/token",
                   data={"grant_type": "password", "username": username, "password": password})
    if r.status_code in (400, 401, 403, 422):
        raise SignInFailed("The username or password is not right.")
    if r.status_code >= 400:
        raise _problem(r)
    answer = r.json()
    try:
        principal = await verifier.verify(answer["access_token"])
    except TokenError:
        raise Unavailable("identity") from None
    restricted = principal.claims.get("scope") == PASSWORD_CHANGE_SCOPE
    display = ""
    if not restricted:
        me = await call(deps, "identity", "GET", "/v1/me", token=answer["access_token"])
        if me.status_code == 200:
            body = me.json()
            display = " ".join(p for p in (body.get("first_name"), body.get("last_name")) if p)
            username = str(body.get("username") or username)
    ended = None
    if current is not None:
        ended = current.who
        await sign_out(pool, deps, current)
    sid = uuid.uuid4()
    cookie, hashed = new_cookie()
    now = deps.clock.now()
    access_sealed, refresh_sealed = _seal_tokens(
        deps, sid, answer["access_token"], answer.get("refresh_token"))
    expires = now + timedelta(seconds=int(answer.get("expires_in") or 300))
    notice = f"{ended} was signed out first." if ended else None
    async with transaction(pool) as conn:
        await repo.create_session(
            conn, session_id=sid, cookie_hash=hashed, account_id=uuid.UUID(principal.subject),
            kind=principal.kind, username=username, display_name=display,
            roles=sorted(principal.roles), password_change_required=restricted,
            access_sealed=access_sealed, refresh_sealed=refresh_sealed,
            access_expires_at=expires, csrf_token=new_csrf(), notice=notice)
    session = PageSession(
        sid, uuid.UUID(principal.subject), principal.kind, username, display,
        tuple(sorted(principal.roles)), restricted, answer["access_token"],
        answer.get("refresh_token"), expires, "", notice)
    log.info("page_signin", session=str(sid), kind=principal.kind)
    return SignedIn(cookie, session, ended)


def _from_row(deps: Deps, row: Any) -> PageSession:
    ctx = row["id"].bytes
    refresh = row["refresh_sealed"]
    return PageSession(
        id=row["id"], account_id=row["account_id"], kind=row["kind"],
        username=row["username"], display_name=row["display_name"],
        roles=tuple(row["roles"]), password_change_required=row["password_change_required"],
        access_token=deps.sealer.open(row["access_sealed"], ctx).decode(),
        refresh_token=deps.sealer.open(refresh, ctx).decode() if refresh else None,
        access_expires_at=row["access_expires_at"], csrf_token=row["csrf_token"],
        notice=row["notice"],
    )


async def load_session(pool: asyncpg.Pool, deps: Deps, cookie: str | None
                       ) -> PageSession | None:
    """The open session the cookie names, its access token fresh; None when there is none
    (unknown, ended, idle too long, or identity no longer honours it)."""
    if not cookie or len(cookie) > 200:
        return None
    now = deps.clock.now()
    idle = now - timedelta(minutes=deps.settings.session_idle_minutes)
    # one statement, no BEGIN/COMMIT round trips: this runs before every page
    async with pool.acquire() as conn:
        row = await repo.open_session_by_cookie(conn, cookie_hash(cookie), idle)
        if row is None:
            return None
        if row["notice"]:
            await repo.take_notice(conn, row["id"])
    session = _from_row(deps, row)
    if session.access_expires_at - REFRESH_MARGIN > now:
        return session
    if not session.refresh_token:
        await end_here(pool, session.id)
        return None
    r = await call(deps, "identity", "POST", "/v1/auth/token",
                   data={"grant_type": "refresh_token", "refresh_token": session.refresh_token})
    if r.status_code != 200:
        await end_here(pool, session.id)
        return None
    answer = r.json()
    expires = now + timedelta(seconds=int(answer.get("expires_in") or 300))
    access_sealed, refresh_sealed = _seal_tokens(
        deps, session.id, answer["access_token"], answer.get("refresh_token"))
    async with transaction(pool) as conn:
        await repo.store_tokens(conn, session.id, access_sealed, refresh_sealed, expires)
    return replace(session, access_token=answer["access_token"],
                   refresh_token=answer.get("refresh_token"), access_expires_at=expires)


async def end_here(pool: asyncpg.Pool, session_id: uuid.UUID) -> None:
    async with transaction(pool) as conn:
        await repo.end_session(conn, session_id)


async def sign_out(pool: asyncpg.Pool, deps: Deps, session: PageSession) -> None:
    """Ends the page session and identity's session behind it (``POST /v1/me/sign-out``:
    identity tells every service, which then refuse the session's tokens). When the
    access token has lapsed, the refresh token is presented twice instead: identity
    ends a session whose refresh token comes back a second time."""
    async with transaction(pool) as conn:
        row = await repo.end_session(conn, session.id)
    if row is None:
        return
    with contextlib.suppress(Unavailable):
        r = await call(deps, "identity", "POST", "/v1/me/sign-out",
                       token=session.access_token)
        if r.status_code == 401 and row["refresh_sealed"] is not None:
            refresh = deps.sealer.open(row["refresh_sealed"], session.id.bytes).decode()
            for _ in range(2):
                await call(deps, "identity", "POST", "/v1/auth/token",
                           data={"grant_type": "refresh_token", "refresh_token": refresh})
    log.info("page_signout", session=str(session.id))


async def change_password(
    pool: asyncpg.Pool, deps: Deps, verifier: JwksVerifier, session: PageSession, *,
    current_password: str, new_password: str,
) -> SignedIn:
    """Identity ends every session of the account on a change: the page session then
    signs in again with the new password, so the person stays signed in."""
    await api(deps, session, "identity", "POST", "/v1/me/password",
              json={"current_password": current_password, "new_password": new_password})
    async with transaction(pool) as conn:
        await repo.end_session(conn, session.id)
    done = await sign_in(pool, deps, verifier, username=session.username,
                         password=new_password, client=f"session:{session.id}", current=None)
    return done


# -- Add Customer between its steps ------------------------------------------------------


async def keep_intake(pool: asyncpg.Pool, deps: Deps, session: PageSession,
                      body: dict[str, Any]) -> uuid.UUID:
    intake_id = uuid.uuid4()
    sealed = deps.sealer.seal_json(body, intake_id.bytes)
    async with transaction(pool) as conn:
        await repo.put_intake(conn, intake_id, session.id, sealed)
    return intake_id


async def intake(pool: asyncpg.Pool, deps: Deps, session: PageSession,
                 intake_id: uuid.UUID) -> dict[str, Any] | None:
    async with pool.acquire() as conn:
        sealed = await repo.get_intake(conn, intake_id, session.id)
    if sealed is None:
        return None
    body: dict[str, Any] = deps.sealer.open_json(sealed, intake_id.bytes)
    return body


async def drop_intake(pool: asyncpg.Pool, intake_id: uuid.UUID) -> None:
    async with transaction(pool) as conn:
        await repo.drop_intake(conn, intake_id)


async def forget_old(pool: asyncpg.Pool, deps: Deps) -> None:
    """Every hour: half-way intakes after a day, session rows after a week."""
    while True:
        now = deps.clock.now()
        try:
            async with transaction(pool) as conn:
                await repo.forget_old(conn, sessions_before=now - timedelta(days=7),
                                      intakes_before=now - timedelta(days=1))
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("forget_old_failed", error=repr(exc))
        await asyncio.sleep(3600)
