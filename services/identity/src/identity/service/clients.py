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
from typing import Any

import jwt

from identity.deps import Deps
from identity.domain.accounts import FieldError, InvalidCredentials, InvalidInput
from identity.domain.tokens import (
    ALGORITHM,
    SigningKey,
    TokenSettings,
    hash_token,
    new_opaque_token,
)
from identity.repository import clients as repo
from shared.servicekit.db import Connection
from shared.servicekit.errors import Conflict

# what a client may be given: feeding IWDS or readiness data, asking identity's matcher
CLIENT_SCOPES = frozenset({"iwds:feed", "identity:match", "readiness:feed"})
MATCH_SCOPE = "identity:match"
# the service each scope is used at: a client's token is for those services only
SCOPE_AUDIENCE = {"iwds:feed": "sync-iwds", "identity:match": "identity",
                  "readiness:feed": "readiness"}
CLIENT_SECRET_PREFIX = "csc_cs_"  # noqa: S105 - a prefix, not a secret
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DUMMY_HASH = hash_token(CLIENT_SECRET_PREFIX + "no-such-client")


async def create_client(conn: Connection, name: str, scopes: Iterable[str]
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
    if not await repo.insert_client(conn, client_id, name, secret_hash, wanted):
        raise Conflict("name", "is already taken")
    return client_id, secret


def issue_client_token(key: SigningKey, *, client_id: str, scopes: Iterable[str],
                       now: datetime, settings: TokenSettings) -> str:
    iat = int(now.timestamp())
    audiences = sorted({SCOPE_AUDIENCE[s] for s in scopes if s in SCOPE_AUDIENCE})
    claims: dict[str, Any] = {
        "sub": client_id, "kind": "client", "scope": " ".join(sorted(scopes)), "roles": [],
        "iss": settings.issuer, "aud": audiences, "iat": iat,
        "exp": iat + int(settings.access_ttl.total_seconds()), "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


async def client_token(conn: Connection, ids: Deps, client_id: str | None,
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
    row = await repo.active_client(conn, cid) if cid else None
    stored = row["secret_hash"] if row else _DUMMY_HASH
    if not secrets.compare_digest(hash_token(client_secret), stored) or row is None:
        raise InvalidCredentials("invalid client credentials")
    assert ids.keyring is not None
    token = issue_client_token(ids.keyring.signing_key(), client_id=str(row["id"]),
                               scopes=row["scopes"], now=ids.clock.now(), settings=ids.tokens)
    return token, int(ids.tokens.access_ttl.total_seconds())
