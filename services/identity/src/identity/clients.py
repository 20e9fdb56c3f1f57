"""OAuth2 client credentials: machines (IWDS feed producers, sync-iwds asking the
matcher) get a token that carries scopes and nothing else: ``kind: "client"``, no
roles, no session. The kit refuses such tokens on every staff or customer route
(``shared.servicekit.auth``) and accepts them only through ``require_scope``.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

import asyncpg
import jwt
from fastapi import Depends, Request

from identity.deps import Deps as Identity
from identity.domain import FieldError, InvalidInput
from identity.service import InvalidCredentials
from identity.tokens import ALGORITHM, SigningKey, TokenSettings, hash_token, new_opaque_token
from shared.servicekit.auth import ClientTokenError, JwksVerifier, Principal, TokenError
from shared.servicekit.errors import Conflict
from shared.servicekit.http import PROBLEM_BASE, Problem

# what a client may be given: feeding IWDS data, asking identity's matcher
CLIENT_SCOPES = frozenset({"iwds:feed", "identity:match"})
MATCH_SCOPE = "identity:match"
CLIENT_SECRET_PREFIX = "csc_cs_"  # noqa: S105 - a prefix, not a secret
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DUMMY_HASH = hash_token(CLIENT_SECRET_PREFIX + "no-such-client")


async def create_client(pool: asyncpg.Pool, name: str, scopes: Iterable[str]
                        ) -> tuple[uuid.UUID, str]:
    """A new client: (client_id, secret). The secret is never stored nor shown again."""
    wanted = sorted(set(scopes))
    errors = []
    if not _NAME.fullmatch(name):
        errors.append(FieldError("name", "is 1-64 letters, digits, dot, dash or underscore"))
    unknown = [s for s in wanted if s not in CLIENT_SCOPES]
    if not wanted or unknown:
        errors.append(FieldError("scope", f"must be among {', '.join(sorted(CLIENT_SCOPES))}"))
    if errors:
        raise InvalidInput(errors)
    secret, secret_hash = new_opaque_token(CLIENT_SECRET_PREFIX)
    client_id = uuid.uuid4()
    try:
        await pool.execute(
            "INSERT INTO oauth_clients (id, name, secret_hash, scopes) VALUES ($1, $2, $3, $4)",
            client_id, name, secret_hash, wanted)
    except asyncpg.UniqueViolationError:
        raise Conflict("name", "is already taken") from None
    return client_id, secret


def issue_client_token(key: SigningKey, *, client_id: str, scopes: Iterable[str],
                       now: datetime, settings: TokenSettings) -> str:
    iat = int(now.timestamp())
    claims: dict[str, Any] = {
        "sub": client_id, "kind": "client", "scope": " ".join(sorted(scopes)), "roles": [],
        "iss": settings.issuer, "aud": settings.audience, "iat": iat,
        "exp": iat + int(settings.access_ttl.total_seconds()), "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


async def client_token(pool: asyncpg.Pool, ids: Identity, client_id: str | None,
                       client_secret: str | None) -> tuple[str, int]:
    """``grant_type=client_credentials``: (access token, seconds it lives)."""
    missing = [FieldError(f, "is required") for f, v in
               (("client_id", client_id), ("client_secret", client_secret)) if not v]
    if missing:
        raise InvalidInput(missing)
    assert client_id is not None and client_secret is not None
    try:
        cid: uuid.UUID | None = uuid.UUID(client_id)
    except ValueError:
        cid = None
    row = await pool.fetchrow(
        "SELECT id, secret_hash, scopes FROM oauth_clients WHERE id = $1 AND disabled_at IS NULL",
        cid) if cid else None
    stored = row["secret_hash"] if row else _DUMMY_HASH
    if not secrets.compare_digest(hash_token(client_secret), stored) or row is None:
        raise InvalidCredentials("invalid client credentials")
    assert ids.keyring is not None
    token = issue_client_token(ids.keyring.signing_key(), client_id=str(row["id"]),
                               scopes=row["scopes"], now=ids.clock.now(), settings=ids.tokens)
    return token, int(ids.tokens.access_ttl.total_seconds())


async def staff_or_matcher(request: Request) -> uuid.UUID:
    """Who may search matches: a staff member, or a client with scope identity:match
    (sync-iwds linking IWDS records). The acting id, for the audit."""
    verifier: JwksVerifier = request.app.state.verifier
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "Unauthorized", "a bearer token is required",
                      type_=PROBLEM_BASE + "unauthorized", headers={"WWW-Authenticate": "Bearer"})
    try:
        principal: Principal = await verifier.verify(token.strip())
    except ClientTokenError:
        client = await verifier.verify_client(token.strip())
        if MATCH_SCOPE not in client.scopes:
            raise Problem(403, "Forbidden", f"requires the scope {MATCH_SCOPE}",
                          type_=PROBLEM_BASE + "forbidden") from None
        return uuid.UUID(client.client_id)
    except TokenError as exc:
        raise Problem(401, "Unauthorized", str(exc), type_=PROBLEM_BASE + "unauthorized",
                      headers={"WWW-Authenticate": "Bearer"}) from exc
    if not principal.is_staff or principal.claims.get("scope"):
        raise Problem(403, "Forbidden", "staff only", type_=PROBLEM_BASE + "forbidden")
    return principal.id


MatchActor = Annotated[uuid.UUID, Depends(staff_or_matcher)]
