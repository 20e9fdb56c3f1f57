"""What enrollment's use cases share: the caller, pages of a list, the program access
rule, and the reference codes a form mentions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from enrollment.domain.programs import NotFound
from enrollment.domain.records import Actor as Actor
from enrollment.domain.returning_citizens import mentioned_codes
from enrollment.repository import programs as repo
from shared.servicekit.db import Connection
from shared.servicekit.paging import encode_cursor


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None


def page_of(rows: Sequence[Any], limit: int, key: Any) -> Page:
    """``rows`` fetched with limit + 1: the page and the cursor after its last row."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return Page(items, encode_cursor(*key(items[-1])) if more and items else None)


async def require_program_access(conn: Connection, program: str, actor: Actor) -> None:
    """Only staff authorized for a program see its people; to anyone else it is not there."""
    if actor.kind != "staff" or not await repo.is_authorized(conn, program, actor.id):
        raise NotFound("no such program among yours")


async def known_codes(conn: Connection, raw: dict[str, Any]) -> dict[tuple[str, str], bool]:
    """Which of the reference codes a form mentions exist, and whether each is offered."""
    return await repo.reference_states(conn, mentioned_codes(raw))
