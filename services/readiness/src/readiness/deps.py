"""What readiness's use cases need, built once at start-up: the clock, the outbox, and the
client of groups (who reaches whom, and the message route the reminders go through)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import httpx
import jwt

from readiness.settings import ReadinessSettings
from shared.servicekit.access import GroupsAccess
from shared.servicekit.auth import ALLOWED_ALGORITHMS, JwksVerifier, TokenError
from shared.servicekit.clock import Clock, SystemClock
from shared.servicekit.delegation import NarrowedBearer, TokenExchange
from shared.servicekit.errors import DomainError
from shared.servicekit.http import REQUEST_ID_HEADER
from shared.servicekit.logs import correlation_id
from shared.servicekit.outbox import Outbox


class GroupsUnavailable(DomainError):
    """groups could not be asked (down, slow, or an unexpected answer): 503, never an allow."""


class AccessCheck(Protocol):
    """Does the caller (by their bearer token) reach this customer / this group?"""

    async def reaches_customer(self, token: str, customer_id: UUID) -> bool: ...

    async def reaches_group(self, token: str, group_id: UUID) -> bool: ...


class Messenger(Protocol):
    async def send_group_message(
        self, token: str, group_id: UUID, body: dict[str, Any]
    ) -> dict[str, Any]: ...


class GroupsClient:
    """groups over HTTP with the caller's token and a short timeout.

    Who reaches a customer is asked through the kit's :class:`GroupsAccess` (the one
    check every service makes: 200 with the paths, 404, else 503 ``access-unavailable``),
    on the same connection pool; whether the caller reaches a group, and the message
    route, stay here.
    """

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.customers = GroupsAccess(client=http)

    @staticmethod
    def _headers(token: str) -> dict[str, str]:
        """The caller's token, and the request id so groups' logs join ours."""
        headers = {"Authorization": f"Bearer {token}"}
        request_id = correlation_id.get()
        if request_id:
            headers[REQUEST_ID_HEADER] = request_id
        return headers

    async def _get_reachable(self, token: str, path: str) -> bool:
        try:
            r = await self.http.get(path, headers=self._headers(token))
        except httpx.HTTPError as exc:
            raise GroupsUnavailable(f"groups unreachable: {type(exc).__name__}") from exc
        if r.status_code == 200:
            return True
        if r.status_code in (403, 404):
            return False
        raise GroupsUnavailable(f"groups answered {r.status_code}")

    async def reaches_customer(self, token: str, customer_id: UUID) -> bool:
        return await self.customers.reaches(token, customer_id)

    async def reaches_group(self, token: str, group_id: UUID) -> bool:
        return await self._get_reachable(token, f"/v1/groups/{group_id}")

    async def send_group_message(
        self, token: str, group_id: UUID, body: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            r = await self.http.post(f"/v1/groups/{group_id}/messages", json=body,
                                     headers=self._headers(token))
        except httpx.HTTPError as exc:
            raise GroupsUnavailable(f"groups unreachable: {type(exc).__name__}") from exc
        if r.status_code in (403, 404):
            raise GroupNotReached()
        if r.status_code != 202:
            raise GroupsUnavailable(f"groups answered {r.status_code} to the message")
        answer: dict[str, Any] = r.json()
        return answer

    async def aclose(self) -> None:
        await self.http.aclose()


class GroupNotReached(DomainError):
    """groups would not send to this group for the caller (404 to the caller)."""


@dataclass(frozen=True)
class Deps:
    clock: Clock
    outbox: Outbox
    access: AccessCheck
    messenger: Messenger
    settings: ReadinessSettings


def groups_http(s: ReadinessSettings) -> httpx.AsyncClient:
    # groups gets the caller's token narrowed to groups alone (token exchange)
    return httpx.AsyncClient(
        base_url=s.groups_url.rstrip("/"),
        auth=NarrowedBearer(TokenExchange(s.token_endpoint,
                                          timeout=s.groups_timeout_seconds), "groups"),
        timeout=httpx.Timeout(s.groups_timeout_seconds),
        # below groups' 5 s keep-alive: dropped here before groups closes it under a call
        limits=httpx.Limits(max_connections=s.groups_max_connections,
                            max_keepalive_connections=s.groups_max_connections,
                            keepalive_expiry=4.0),
    )


def build(s: ReadinessSettings) -> Deps:
    groups = GroupsClient(groups_http(s))
    return Deps(clock=SystemClock(s.zone), outbox=Outbox("readiness"), access=groups,
                messenger=groups, settings=s)


# -- the feed's client credential ------------------------------------------------------

class FeedTokenRejected(Exception):
    """The bearer is not a usable token (401) or not a feed client's (403)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class FeedClient:
    client_id: str
    scopes: frozenset[str]


async def verify_feed_token(verifier: JwksVerifier, token: str, scope: str) -> FeedClient:
    """A client-credential token (``kind: "client"``) from identity holding ``scope``.

    Verified against the same JWKS, issuer and audience as every other token; a staff or
    customer token never passes here, whatever scopes it claims. (The kit verifier only
    knows staff and customers; when it learns clients this becomes one call to it.)
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise FeedTokenRejected(401, "malformed token") from None
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise FeedTokenRejected(401, "token algorithm not accepted")
    if not isinstance(kid, str) or not kid:
        raise FeedTokenRejected(401, "token has no key id")
    try:
        await verifier._refresh(force=False)
        if kid not in verifier._keys:
            await verifier._refresh(force=True)
    except TokenError as exc:
        raise FeedTokenRejected(401, str(exc)) from None
    key = verifier._keys.get(kid)
    if key is None:
        raise FeedTokenRejected(401, "token signed by an unknown key")
    if key.algorithm_name != alg:
        raise FeedTokenRejected(401, "token algorithm does not match its key")
    try:
        claims = jwt.decode(
            token, key=key.key, algorithms=[alg], audience=verifier.audience,
            issuer=verifier.issuer, options={"require": ["exp", "iat", "sub", "iss", "aud"]})
    except jwt.PyJWTError as exc:
        raise FeedTokenRejected(401, str(exc)) from None
    if claims.get("kind") != "client":
        raise FeedTokenRejected(403, "a feed client's credential is required")
    raw_scope = claims.get("scope")
    scopes = frozenset(raw_scope.split()) if isinstance(raw_scope, str) else frozenset()
    if scope not in scopes:
        raise FeedTokenRejected(403, f"the credential lacks the scope {scope}")
    return FeedClient(str(claims["sub"]), scopes)
