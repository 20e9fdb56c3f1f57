"""Messages to a group (recipients fixed at send time, each once) and to one customer.

Sending fixes the recipients in the database, in chunks, and answers at once; a
background task turns each chunk into one GroupMessageRequested in the outbox, so
no event grows with the group (5,000 ids is about 190 kB) and the answer does not
wait on serializing 100,000 ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from uuid import UUID

import asyncpg
import structlog

from groups import domain
from groups.deps import Deps
from groups.repository import groups as groups_repo
from groups.repository import messages as repo
from groups.service import access
from groups.service.common import Caller, reached_group
from shared.schemas.groups import DirectMessageSent, GroupMessageRequested
from shared.servicekit import audit
from shared.servicekit.db import Connection
from shared.servicekit.errors import Conflict, FieldError, InvalidInput

log = structlog.get_logger(__name__)


async def send_to_group(conn: Connection, deps: Deps, caller: Caller, group_id: UUID, *,
                        subject: str, body: str, include_subgroups: bool,
                        customer_ids: Sequence[UUID] | None) -> tuple[UUID, int]:
    """(message id, recipients); the events follow from the message task."""
    subject, body = domain.check_message(subject, body)
    if customer_ids is not None and not customer_ids:
        raise InvalidInput([FieldError("customer_ids", "must name at least one customer")])
    await reached_group(conn, caller, group_id)
    groups = (await groups_repo.subtree(conn, group_id)) if include_subgroups else [group_id]
    message_id = uuid.uuid4()
    size = deps.settings.message_chunk_size
    now = deps.clock.now()
    # the message row first (chunks refer to it), its counts once they are known
    await repo.insert_message(conn, id=message_id, group_id=group_id, customer_id=None,
                              staff_id=caller.id, subject=subject, body=body,
                              include_subgroups=include_subgroups, recipients=0,
                              chunk_count=1, now=now)
    total = await repo.fix_recipients(conn, message_id=message_id, groups=groups,
                                      only=customer_ids, chunk_size=size)
    if total == 0:
        raise Conflict("group", "has no members to send to", code="no-recipients")
    await conn.execute("UPDATE messages SET recipients = $2, chunk_count = $3 WHERE id = $1",
                       message_id, total, domain.chunk_count(total, size))
    await audit.record(conn, caller.actor, "message.sent_to_group", group_id, {
        "message_id": message_id, "recipients": total,
        "include_subgroups": include_subgroups, "narrowed": customer_ids is not None})
    return message_id, total


async def send_direct(conn: Connection, deps: Deps, caller: Caller, customer_id: UUID, *,
                      subject: str, body: str) -> UUID:
    subject, body = domain.check_message(subject, body)
    await access.require_customer(conn, caller, customer_id, "messaged")
    message_id = uuid.uuid4()
    await repo.insert_message(conn, id=message_id, group_id=None, customer_id=customer_id,
                              staff_id=caller.id, subject=subject, body=body,
                              include_subgroups=False, recipients=1, chunk_count=1,
                              now=deps.clock.now())
    await deps.outbox.add(conn, DirectMessageSent(
        message_id=message_id, staff_id=caller.id, customer_id=customer_id,
        subject=subject, body=body))
    return message_id


async def emit_chunks(conn: Connection, deps: Deps, limit: int = 20) -> int:
    """Turn waiting chunks into events (in the caller's transaction); how many."""
    rows = await repo.claim_chunks(conn, limit)
    if not rows:
        return 0
    await deps.outbox.add_many(conn, [GroupMessageRequested(
        message_id=r["message_id"], group_id=r["group_id"], staff_id=r["staff_id"],
        subject=r["subject"], body=r["body"], recipient_ids=list(r["recipient_ids"]),
        chunk_index=r["chunk_index"], chunk_count=r["chunk_count"]) for r in rows])
    await repo.mark_emitted(conn, [(r["message_id"], r["chunk_index"]) for r in rows],
                            deps.clock.now())
    return len(rows)


async def run_emitter(pool: asyncpg.Pool, deps: Deps) -> None:
    """For the life of the service: emit chunks when woken or every poll interval."""
    while True:
        try:
            while True:
                async with pool.acquire() as conn, conn.transaction():
                    if not await emit_chunks(conn, deps):
                        break
        except Exception as exc:  # the task must outlive any one failure
            log.error("message_emit_failed", error=type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(deps.messages_waiting.wait(),
                                   deps.settings.message_poll_interval)
        deps.messages_waiting.clear()
