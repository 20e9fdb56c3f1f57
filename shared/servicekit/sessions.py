"""Revoked sign-in sessions, known to every service within about a second.

identity ends a session (sign-out, password change or reset, a refresh token used
twice, a merge) and emits ``SessionRevoked``. Every service consumes it through
its ordinary inbox consumer (the kit adds the subscription) into its own
``revoked_sessions`` table and sends a PostgreSQL NOTIFY; each process of the
service LISTENs and keeps the set in memory, so the token check
(``JwksVerifier.verify``) refuses a token naming a revoked session (claim
``sid``) without a query per request. The set is reloaded from the table at
start-up and every few seconds (a notification missed while a connection was down
is picked up then), and a row is forgotten once no token of its session can be
alive any more (``forget_after``).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from shared.schemas.envelope import Envelope
from shared.schemas.identity import SessionRevoked
from shared.servicekit.consumer import Subscriptions
from shared.servicekit.db import Connection

log = structlog.get_logger(__name__)
CHANNEL = "csc_session_revoked"


class RevokedSessions:
    """The revoked session ids this process knows, each until it may be forgotten."""

    def __init__(self) -> None:
        self._until: dict[str, datetime] = {}
        self.loaded = False

    def __contains__(self, session_id: object) -> bool:
        return isinstance(session_id, str) and session_id in self._until

    def __len__(self) -> int:
        return len(self._until)

    def add(self, session_id: str, forget_after: datetime) -> None:
        self._until[session_id] = max(forget_after, self._until.get(session_id, forget_after))

    def prune(self, now: datetime) -> None:
        for sid in [s for s, until in self._until.items() if until < now]:
            del self._until[sid]


async def record_revoked(
    conn: Connection, session_id: uuid.UUID, account_id: uuid.UUID,
    revoked_at: datetime, forget_after: datetime,
) -> None:
    """Note a revoked session in this service's table and tell its processes (the
    NOTIFY is delivered when the caller's transaction commits)."""
    await conn.execute(
        "INSERT INTO revoked_sessions (session_id, account_id, revoked_at, forget_after)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO UPDATE"
        " SET forget_after = greatest(revoked_sessions.forget_after, excluded.forget_after)",
        session_id, account_id, revoked_at, forget_after)
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL,
                       f"{session_id} {forget_after.timestamp()}")


async def on_session_revoked(
    conn: Connection, deps: Any, event: SessionRevoked, envelope: Envelope
) -> None:
    """The kit's handler, subscribed by every service."""
    await record_revoked(conn, event.session_id, event.account_id, event.revoked_at,
                         event.forget_after)


def with_revocations(subscriptions: Subscriptions) -> Subscriptions:
    """A service's subscriptions plus the kit's SessionRevoked handler (unless the
    service handles the event itself)."""
    if SessionRevoked in subscriptions:
        return subscriptions
    return {**subscriptions, SessionRevoked: on_session_revoked}


async def load(conn: Connection | asyncpg.Pool, revoked: RevokedSessions) -> int:
    """Add every live revocation in the table to ``revoked``; forget expired ones."""
    rows = await conn.fetch(
        "SELECT session_id, forget_after FROM revoked_sessions WHERE forget_after > now()")
    for r in rows:
        revoked.add(str(r["session_id"]), r["forget_after"])
    revoked.prune(datetime.now(UTC))
    revoked.loaded = True
    return len(rows)


def _on_notify(revoked: RevokedSessions, payload: str) -> None:
    sid, _, at = payload.partition(" ")
    try:
        forget_after = datetime.fromtimestamp(float(at), UTC)
        uuid.UUID(sid)
    except ValueError:
        return
    revoked.add(sid, forget_after)


async def watch(dsn: str, pool: asyncpg.Pool, revoked: RevokedSessions, *,
                reload_seconds: float = 5.0) -> None:
    """LISTEN for revocations for the life of the service; reload the table every
    ``reload_seconds`` and after every reconnection; delete forgotten rows."""
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(dsn)
            await conn.add_listener(CHANNEL, lambda *a: _on_notify(revoked, a[3]))
            while not conn.is_closed():
                # after LISTEN: nothing committed from here on can be missed
                await load(pool, revoked)
                await pool.execute(
                    "DELETE FROM revoked_sessions WHERE forget_after < now() - interval '1 hour'")
                await asyncio.sleep(reload_seconds)
        except (OSError, asyncpg.PostgresError) as exc:
            log.info("revocation_listen_lost", error=type(exc).__name__)
        finally:
            if conn is not None:
                await conn.close()
        await asyncio.sleep(1.0)
