"""Verification of identity's access tokens against its published JWKS.

Only asymmetric algorithms are accepted (``alg: none`` and HMAC are refused,
so a public key can never be used as an HMAC secret). The key set is fetched
over HTTP and cached; an unknown ``kid`` triggers one refetch (key rotation),
rate-limited so a flood of forged kids cannot hammer identity.

Each service is its own audience: a verifier accepts only tokens whose ``aud``
names its service (``ServiceSpec.name``), so a token made for enrollment and
identity is refused by groups. A staff or customer token names its sign-in
session (``sid``); a session identity has revoked (``shared.servicekit.sessions``)
is refused here although its tokens have not expired.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import httpx
import jwt
from fastapi import Depends, Request
from jwt import PyJWK

from shared.servicekit.audit import Actor
from shared.servicekit.http import PROBLEM_BASE, Problem
from shared.servicekit.sessions import RevokedSessions

ALLOWED_ALGORITHMS = ["RS256", "ES256", "EdDSA"]


class TokenError(Exception):
    """The token is missing, malformed, expired, or not signed by a known key."""


class ClientTokenError(TokenError):
    """A valid client credential's token where a staff or customer one is needed."""


class NotClientTokenError(TokenError):
    """A valid staff or customer token where a client credential's one is needed."""


@dataclass(frozen=True)
class Principal:
    subject: str
    kind: Literal["staff", "customer"]
    roles: frozenset[str] = frozenset()
    claims: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    @property
    def session_id(self) -> str:
        """The sign-in session the token belongs to (claim ``sid``)."""
        return str(self.claims.get("sid", ""))

    @property
    def id(self) -> uuid.UUID:
        """The account id the token was issued to."""
        return uuid.UUID(self.subject)

    @property
    def actor(self) -> Actor:
        """Who acts, for the audit log."""
        return Actor(self.id, self.kind)


@dataclass(frozen=True)
class ClientPrincipal:
    """A machine holding an OAuth2 client credential (``kind: "client"``): it has
    scopes and never acts as a staff member or a customer."""

    client_id: str
    scopes: frozenset[str]
    claims: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def actor(self) -> Actor:
        try:
            return Actor(uuid.UUID(self.client_id), "client")
        except ValueError:
            return Actor(None, "client")


class JwksVerifier:
    def __init__(
        self,
        jwks_url: str,
        *,
        issuer: str,
        audience: str,
        cache_seconds: float = 300.0,
        client: httpx.AsyncClient | None = None,
        min_refetch_seconds: float = 5.0,
    ) -> None:
        # audience: the name of the service verifying (a token must name it in ``aud``)
        self.jwks_url, self.issuer, self.audience = jwks_url, issuer, audience
        # sessions identity ended: set by the kit's runtime (None: nothing is revoked)
        self.revoked: RevokedSessions | None = None
        self.cache_seconds, self.min_refetch = cache_seconds, min_refetch_seconds
        self._client = client
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")  # last successful fetch
        self._tried_at = float("-inf")  # last attempt, successful or not
        self._lock = asyncio.Lock()

    @classmethod
    def from_jwks(cls, jwks: dict[str, Any], *, issuer: str, audience: str) -> JwksVerifier:
        """A verifier with a fixed key set (tests, or keys shipped by file)."""
        v = cls("", issuer=issuer, audience=audience, cache_seconds=float("inf"))
        v._keys = _parse_jwks(jwks)
        v._fetched_at = v._tried_at = time.monotonic()
        return v

    def replace_keys(self, jwks: dict[str, Any]) -> None:
        """Use this key set from now on (the issuing service's own keys)."""
        self._keys = _parse_jwks(jwks)
        self._fetched_at = time.monotonic()

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            now = time.monotonic()
            fresh = now - self._fetched_at < self.cache_seconds
            # Every fetch, failed ones included, waits min_refetch after the
            # last: neither forged kids nor an unreachable identity make each
            # request wait on another fetch.
            recent = now - self._tried_at < self.min_refetch
            if (fresh and not force) or recent or not self.jwks_url:
                if not self._keys and recent and self.jwks_url:
                    raise TokenError("signing keys unavailable")
                return
            self._tried_at = now
            client = self._client or httpx.AsyncClient(timeout=3.0)
            try:
                resp = await client.get(self.jwks_url)
                resp.raise_for_status()
                self._keys = _parse_jwks(resp.json())
                self._fetched_at = time.monotonic()
            except (httpx.HTTPError, ValueError) as exc:
                if not self._keys:
                    raise TokenError(f"signing keys unavailable: {type(exc).__name__}") from exc
            finally:
                if self._client is None:
                    await client.aclose()

    async def verify(self, token: str) -> Principal:
        """A staff or customer principal; ClientTokenError for a client credential."""
        return self._principal(await self._claims(token))

    def _principal(self, claims: dict[str, Any]) -> Principal:
        kind = claims.get("kind")
        if kind == "client":
            raise ClientTokenError("a client credential cannot act as staff or customer")
        if kind not in ("staff", "customer"):
            raise TokenError("token has no principal kind")
        sid = claims.get("sid")
        if not isinstance(sid, str) or not sid:
            raise TokenError("token names no session")
        if self.revoked is not None and sid in self.revoked:
            raise TokenError("the session has ended")
        roles = claims.get("roles") or []
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise TokenError("token roles are not a list of names")
        return Principal(str(claims["sub"]), kind, frozenset(roles), claims)

    async def verify_client(self, token: str) -> ClientPrincipal:
        """A client credential's principal; TokenError for any other token."""
        claims = await self._claims(token)
        if claims.get("kind") != "client":
            raise NotClientTokenError("requires a client credential")
        if claims.get("roles"):
            raise TokenError("a client token carries no roles")
        scope = claims.get("scope")
        scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
        return ClientPrincipal(str(claims["sub"]), scopes, claims)

    async def claims_for_exchange(self, token: str) -> dict[str, Any]:
        """A staff or customer token's claims, checked as :meth:`verify` does except for
        the audience (identity narrows a token for another service: RFC 8693)."""
        claims = await self._claims(token, check_audience=False)
        principal = self._principal(claims)
        return principal.claims

    async def _claims(self, token: str, *, check_audience: bool = True) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("malformed token") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise TokenError("token algorithm not accepted")
        if not isinstance(kid, str) or not kid:
            raise TokenError("token has no key id")
        await self._refresh(force=False)
        if kid not in self._keys:
            await self._refresh(force=True)
        key = self._keys.get(kid)
        if key is None:
            raise TokenError("token signed by an unknown key")
        if key.algorithm_name != alg:
            raise TokenError("token algorithm does not match its key")
        try:
            claims = jwt.decode(
                token, key=key.key, algorithms=[alg], audience=self.audience,
                issuer=self.issuer, options={"require": ["exp", "iat", "sub", "iss", "aud"],
                                             "verify_aud": check_audience},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from exc
        return dict(claims)


def _parse_jwks(jwks: Any) -> dict[str, PyJWK]:
    """The usable signing keys of a JWKS; an entry we cannot use is skipped."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys: dict[str, PyJWK] = {}
    for entry in jwks["keys"]:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or entry.get("kty") == "oct":
            continue  # symmetric keys never verify our tokens
        if entry.get("use", "sig") != "sig":
            continue
        try:
            key = PyJWK(entry)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue  # unsupported or malformed: the other keys still count
        if key.algorithm_name in ALLOWED_ALGORITHMS:
            keys[kid] = key
    return keys


# -- FastAPI dependencies --------------------------------------------------------

def _unauthorized(detail: str) -> Problem:
    return Problem(
        401, "Unauthorized", detail, type_=PROBLEM_BASE + "unauthorized",
        headers={"WWW-Authenticate": "Bearer"},
    )


PASSWORD_CHANGE_SCOPE = "password-change"  # noqa: S105 - a scope name


def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("a bearer token is required")
    return token.strip()


async def any_principal(request: Request) -> Principal:
    """The bearer, including one whose token may only change its password.
    A client credential's token is refused (403): it is no staff member or customer."""
    verifier: JwksVerifier = request.app.state.verifier
    token = _bearer_token(request)
    try:
        return await verifier.verify(token)
    except ClientTokenError as exc:
        raise Problem(403, "Forbidden", str(exc), type_=PROBLEM_BASE + "forbidden") from exc
    except TokenError as exc:
        raise _unauthorized(str(exc)) from exc


async def current_principal(
    principal: Annotated[Principal, Depends(any_principal)],
) -> Principal:
    """The bearer; a token that may only change its password gets a 403 here."""
    if principal.claims.get("scope") == PASSWORD_CHANGE_SCOPE:
        raise Problem(
            403, "Password change required",
            "this account must change its password before doing anything else",
            type_=PROBLEM_BASE + "password-change-required",
        )
    return principal


def require_staff(*roles: str) -> Any:
    """Dependency: a staff token, holding at least one of ``roles`` when given."""

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if not principal.is_staff:
            raise Problem(403, "Forbidden", "staff only", type_=PROBLEM_BASE + "forbidden")
        if roles and not principal.roles.intersection(roles):
            raise Problem(
                403, "Forbidden", f"requires one of the roles: {', '.join(roles)}",
                type_=PROBLEM_BASE + "forbidden",
            )
        return principal

    return Depends(dependency)


def require_customer() -> Any:
    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if principal.kind != "customer":
            raise Problem(403, "Forbidden", "customers only", type_=PROBLEM_BASE + "forbidden")
        return principal

    return Depends(dependency)


def require_scope(scope: str) -> Any:
    """Dependency: a client credential's token carrying ``scope`` (machines' routes).
    A staff or customer token gets a 403."""

    async def dependency(request: Request) -> ClientPrincipal:
        verifier: JwksVerifier = request.app.state.verifier
        token = _bearer_token(request)
        try:
            client = await verifier.verify_client(token)
        except NotClientTokenError as exc:
            raise Problem(403, "Forbidden", str(exc), type_=PROBLEM_BASE + "forbidden") from exc
        except TokenError as exc:
            raise _unauthorized(str(exc)) from exc
        if scope not in client.scopes:
            raise Problem(403, "Forbidden", f"requires the scope {scope}",
                          type_=PROBLEM_BASE + "forbidden")
        return client

    return Depends(dependency)
