"""Operators' view of dead letters: list them, and apply one again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.schemas.envelope import Envelope
from shared.servicekit.consumer import Subscriptions, routes_of
from shared.servicekit.db import Connection
from shared.servicekit.logs import bound_context


@dataclass(frozen=True)
class DeadLetter:
    id: int
    consumer: str
    event_type: str | None
    topic: str
    partition: int
    offset: int
    error: str
    attempts: int
    created_at: datetime
    replayed_at: datetime | None


class ReplayError(RuntimeError):
    """The dead letter cannot be applied (unknown id, unreadable, or failing again)."""


async def list_dead_letters(
    conn: Connection, *, include_replayed: bool = False, limit: int = 100
) -> list[DeadLetter]:
    rows = await conn.fetch(
        'SELECT id, consumer, event_type, topic, partition, "offset", error, attempts,'
        " created_at, replayed_at FROM dead_letter"
        " WHERE $1 OR replayed_at IS NULL ORDER BY id LIMIT $2",
        include_replayed, limit,
    )
    return [DeadLetter(**dict(r)) for r in rows]


async def replay(
    conn: Connection,
    dead_letter_id: int,
    subscriptions: Subscriptions,
    deps: Any = None,
) -> str:
    """Apply a dead-lettered event with its consumer's handler, in one transaction.

    Returns the event type. The inbox row written when it was dead-lettered is
    replaced, so the event counts as applied exactly once.
    """
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT * FROM dead_letter WHERE id = $1 FOR UPDATE", dead_letter_id
        )
        if row is None:
            raise ReplayError(f"no dead letter with id {dead_letter_id}")
        if row["replayed_at"] is not None:
            raise ReplayError(f"dead letter {dead_letter_id} was already replayed")
        try:
            envelope = Envelope.from_bytes(bytes(row["value"]))
            route = routes_of(subscriptions)[envelope.type]
            payload = route.event_class.model_validate(envelope.payload)
        except Exception as exc:
            raise ReplayError(f"dead letter {dead_letter_id} cannot be read: {exc}") from exc
        try:
            with bound_context(request_id=envelope.correlation_id, cause=str(envelope.event_id)):
                async with conn.transaction():
                    await route.handler(conn, deps, payload, envelope)
        except Exception as exc:
            raise ReplayError(
                f"dead letter {dead_letter_id} failed again: {type(exc).__name__}: {exc}"
            ) from exc
        await conn.execute(
            "UPDATE dead_letter SET replayed_at = now() WHERE id = $1", dead_letter_id
        )
    return envelope.type
