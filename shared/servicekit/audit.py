"""The audit log: one append-only table per service (kit migration 0003), one writer.

Every staff action on a person's data, and every read of it, is recorded in the
same transaction as the action, with the request id taken from the log context
(never passed by hand). ``details`` must never hold an SSN or a password.
"""

from __future__ import annotations

import json
import re
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


_COLUMN = re.compile(r"[a-z_][a-z0-9_]{0,62}")


async def record(
    conn: Connection,
    actor: Actor,
    action: str,
    subject: UUID | None = None,
    details: Mapping[str, Any] | None = None,
    **columns: UUID | None,
) -> None:
    """Append one row; the caller's transaction decides whether it stays.

    ``columns`` fill a service's own extra columns of its audit_log (enrollment's
    ``enrollment_id``); their names come from code, never from a request."""
    names = list(columns)
    if any(not _COLUMN.fullmatch(n) for n in names):
        raise ValueError("not a plain column name")
    extra = "".join(f", {n}" for n in names)
    params = "".join(f", ${7 + i}" for i in range(len(names)))
    # text, then jsonb: the same whether or not the connection has a jsonb codec
    sql = (f"INSERT INTO audit_log (actor_id, actor_kind, action, subject_id,"  # noqa: S608
           f" request_id, details{extra}) VALUES ($1, $2, $3, $4, $5, $6::text::jsonb{params})")
    await conn.execute(
        sql,
        actor.id, actor.kind, action, subject, correlation_id.get(),
        json.dumps(dict(details or {}), default=str), *columns.values(),
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
        " SELECT $1, $2, $3, s, $5, $6::text::jsonb FROM unnest($4::uuid[]) AS t(s)",
        actor.id, actor.kind, action, subjects, correlation_id.get(),
        json.dumps(dict(details or {}), default=str),
    )
