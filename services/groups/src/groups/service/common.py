"""What every use case shares: the caller, pages, loading a group the caller may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import asyncpg

from groups.domain import ADMIN_ROLE
from groups.repository import access as access_repo
from groups.repository import groups as repo
from shared.servicekit.audit import Actor
from shared.servicekit.db import Connection
from shared.servicekit.errors import FieldError, Forbidden, InvalidInput, NotFound
from shared.servicekit.paging import BadCursor, decode_cursor


@dataclass(frozen=True)
class Caller:
    """Who is calling, from their verified token."""

    id: UUID
    kind: Literal["staff", "customer"]
    roles: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return self.kind == "staff" and ADMIN_ROLE in self.roles

    @property
    def actor(self) -> Actor:
        return Actor(self.id, self.kind)


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None


def cursor_key(cursor: str | None, arity: int) -> list[Any] | None:
    if not cursor:
        return None
    try:
        return decode_cursor(cursor, arity)
    except BadCursor as exc:
        raise InvalidInput([FieldError("cursor", str(exc))]) from None


def parse_uuid(value: Any, field: str) -> UUID:
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidInput([FieldError(field, "is not a cursor from this list")]) from None


@dataclass(frozen=True)
class Reach:
    """How the caller reaches a group."""

    owner_role: str | None
    program: bool
    iwds: str | None
    admin: bool

    @property
    def owns(self) -> bool:
        return self.owner_role is not None

    @property
    def any(self) -> bool:
        return self.owns or self.program or self.iwds is not None or self.admin


async def reach(conn: Connection, group: asyncpg.Record, caller: Caller) -> Reach:
    owner, program, iwds = await access_repo.group_reach(conn, group, caller.id)
    return Reach(owner, program, iwds, caller.is_admin)


async def reached_group(conn: Connection, caller: Caller, group_id: UUID, *,
                        lock: bool = False) -> tuple[asyncpg.Record, Reach]:
    """The group and how the caller reaches it; NotFound when they do not."""
    group = await repo.group(conn, group_id, lock=lock)
    if group is None:
        raise NotFound("group not found")
    r = await reach(conn, group, caller)
    if not r.any:
        raise NotFound("group not found")
    return group, r


async def owned_group(conn: Connection, caller: Caller, group_id: UUID, *,
                      lock: bool = False) -> asyncpg.Record:
    """A group the caller owns or co-owns (directly or through an ancestor); 404 when
    they do not reach it, 403 when they reach it without owning it."""
    group, r = await reached_group(conn, caller, group_id, lock=lock)
    if not r.owns:
        raise Forbidden("only the group's owners may do this", code="not-owner")
    return group
