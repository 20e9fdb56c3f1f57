"""One Idempotency-Key store for every service.

A request under a key is remembered per (owner, key) with a keyed fingerprint of
the request (never the request itself: it may hold an SSN), so that a repeat
gets the first answer and the same key with another request is refused. Each
service keeps its own table (its rows are its data): the store is told the
table, what a finished request keeps, and, for a request finished in more than
one transaction, the name of its first state.

- identity's customer creation: ``lock``, ``get``, then ``finish`` with the
  sealed answer, all in one transaction;
- enrollment's Add Customer: ``start`` (committed before identity is asked),
  ``drop`` when identity refused, ``finish`` with the saved enrollment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from shared.servicekit.db import Connection

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class Remembered:
    """What the store kept of an earlier request under the key."""

    request_hash: bytes
    state: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class IdempotencyStore:
    """``table`` (owner column, key, request_hash[, state], *kept) keyed by (owner, key)."""

    table: str
    kept: tuple[str, ...]
    owner: str = "staff_id"
    # the state column's value while a request is under way (None: no state column,
    # a request is recorded once it is done)
    started: str | None = None
    done: str = "done"

    def __post_init__(self) -> None:
        for name in (self.table, self.owner, *self.kept):
            if not _NAME.fullmatch(name):
                raise ValueError(f"not a plain SQL name: {name!r}")

    @property
    def _state(self) -> str:
        return ", state" if self.started is not None else ""

    async def lock(self, conn: Connection, owner: UUID, key: str) -> None:
        """Serialise requests with the same key (until the transaction ends)."""
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2 || ':' || $3, 0))",
            self.table, str(owner), key,
        )

    async def get(
        self, conn: Connection, owner: UUID, key: str, *, for_update: bool = False
    ) -> Remembered | None:
        kept = "".join(f", {c}" for c in self.kept)
        row = await conn.fetchrow(
            f"SELECT request_hash{self._state}{kept} FROM {self.table}"  # noqa: S608
            f" WHERE {self.owner} = $1 AND key = $2" + (" FOR UPDATE" if for_update else ""),
            owner, key,
        )
        if row is None:
            return None
        state = row["state"] if self.started is not None else self.done
        return Remembered(bytes(row["request_hash"]), state, {c: row[c] for c in self.kept})

    async def start(self, conn: Connection, owner: UUID, key: str, request_hash: bytes) -> bool:
        """Record a request under way; False when one with the key was recorded first."""
        if self.started is None:
            raise TypeError(f"{self.table} keeps finished requests only")
        return bool(await conn.fetchval(
            f"INSERT INTO {self.table} ({self.owner}, key, request_hash, state)"  # noqa: S608
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
            owner, key, request_hash, self.started,
        ))

    async def drop(self, conn: Connection, owner: UUID, key: str) -> None:
        """The request under way ended with nothing made: the key is free again."""
        if self.started is None:
            raise TypeError(f"{self.table} keeps finished requests only")
        await conn.execute(
            f"DELETE FROM {self.table} WHERE {self.owner} = $1 AND key = $2"  # noqa: S608
            " AND state = $3",
            owner, key, self.started,
        )

    async def finish(
        self, conn: Connection, owner: UUID, key: str, request_hash: bytes,
        values: Mapping[str, Any],
    ) -> None:
        """Keep the finished request's ``values`` (one for each of ``kept``)."""
        if set(values) != set(self.kept):
            raise ValueError(f"{self.table} keeps exactly {', '.join(self.kept)}")
        names = list(self.kept)
        state_value = (self.done,) if self.started is not None else ()
        params = [owner, key, request_hash, *state_value, *(values[n] for n in names)]
        columns = [self.owner, "key", "request_hash", *(["state"] if state_value else []),
                   *names]
        placeholders = ", ".join(f"${i}" for i in range(1, len(params) + 1))
        updates = ", ".join(f"{c} = excluded.{c}"
                            for c in (["state"] if state_value else []) + names)
        await conn.execute(
            f"INSERT INTO {self.table} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608
            f" ON CONFLICT ({self.owner}, key) DO UPDATE SET {updates}",
            *params,
        )
