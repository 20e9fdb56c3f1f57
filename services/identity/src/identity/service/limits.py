"""Counting identity's rate limits: per staff member (or machine client) on the
matcher, per calling address on the public doors. Each count commits in its own
short transaction, so it stays when the request then fails; a refused match is
audited and logged (who and which limit: never what was asked)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
import structlog

from identity.domain.limits import DOOR_SCOPES, MATCH_SCOPE, MatchCaller, PublicDoor
from shared.servicekit import audit
from shared.servicekit.db import transaction
from shared.servicekit.errors import TooManyRequests
from shared.servicekit.limits import hit

if TYPE_CHECKING:
    from identity.deps import Deps

log = structlog.get_logger(__name__)


async def count_match(pool: asyncpg.Pool, ids: Deps, caller: MatchCaller, route: str) -> None:
    """One search by ``caller``; TooManyRequests (429, Retry-After) past its limit,
    with an audit row ``match.rate_limited`` and a warning."""
    refused: TooManyRequests | None = None
    async with transaction(pool) as conn:
        try:
            await hit(conn, MATCH_SCOPE, caller.key, ids.limits.for_match(caller),
                      ids.clock.now())
        except TooManyRequests as exc:
            refused = exc
            await audit.record(conn, audit.Actor(caller.id, caller.kind),
                               "match.rate_limited", None,
                               {"route": route, "limit": exc.reason,
                                "retry_after": exc.retry_after})
    if refused is not None:
        log.warning("match_rate_limited", actor_id=str(caller.id), actor_kind=caller.kind,
                    route=route, limit=refused.reason, retry_after=refused.retry_after)
        raise refused


async def count_door(pool: asyncpg.Pool, ids: Deps, door: PublicDoor, address: str) -> None:
    """One try at a public door from ``address``; TooManyRequests past its limit."""
    async with transaction(pool) as conn:
        try:
            await hit(conn, DOOR_SCOPES[door], address, ids.limits.for_door(door),
                      ids.clock.now())
        except TooManyRequests as exc:
            refused = exc
        else:
            return
    log.warning("door_rate_limited", door=door, limit=refused.reason,
                retry_after=refused.retry_after)
    raise refused
