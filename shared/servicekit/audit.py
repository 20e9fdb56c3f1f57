"""The audit log: one append-only table per service (kit migration 0003), one writer.

Every staff action on a person's data, and every read of it, is recorded in the
same transaction as the action, with the request id taken from the log context
(never passed by hand). ``details`` must never hold an SSN or a password.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from shared.servicekit.db import Connection
from shared.servicekit.logs import correlation_id

ActorKind = Literal["customer", "staff", "system", "client"]


@dataclass(frozen=True)
class Actor:
    """Who acts: a person (staff or customer), a feed client, or the system itself."""

    id: UUID | None
    kind: ActorKind

    @classmethod
    def system(cls) -> Actor:
        return cls(None, "system")


async def record(
    conn: Connection,
    actor: Actor,
    action: str,
    subject: UUID | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append one row; the caller's transaction decides whether it stays."""
    await conn.execute(
        "INSERT INTO audit_log (actor_id, actor_kind, action, subject_id, request_id, details)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
        actor.id, actor.kind, action, subject, correlation_id.get(),
        json.dumps(dict(details or {}), default=str),
    )


async def record_many(
    conn: Connection,
    actor: Actor,
    action: str,
    subjects: list[UUID],
    details: Mapping[str, Any] | None = None,
) -> None:
    """One row per subject in one statement (a list a staff member was shown)."""
    if not subjects:
        return
    await conn.execute(
        "INSERT INTO audit_log (actor_id, actor_kind, action, subject_id, request_id, details)"
        " SELECT $1, $2, $3, s, $5, $6::jsonb FROM unnest($4::uuid[]) AS t(s)",
        actor.id, actor.kind, action, subjects, correlation_id.get(),
        json.dumps(dict(details or {}), default=str),
    )
