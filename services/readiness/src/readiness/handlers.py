"""Events readiness consumes.

Groups' GroupCreated / MemberAdded / MemberRemoved keep the group tree and membership
locally (the dashboard needs no call per member); identity's account events give the
people list its names, and its merges move records. The portal's readiness records
(``portal.readiness.v1``) have their own consumer, :class:`RecordsConsumer`, that hands
each fetched batch to the same pipeline as the NDJSON feed in one set-based write.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from typing import Any

import structlog
from aiokafka import TopicPartition

from readiness import service
from readiness.deps import Deps
from shared.schemas.envelope import Envelope
from shared.schemas.groups import GroupCreated, MemberAdded, MemberRemoved
from shared.schemas.identity import (
    CustomerAccountCreated,
    CustomerAccountsMerged,
    CustomerAccountsUnmerged,
    CustomerAccountUpdated,
)
from shared.schemas.readiness import ReadinessRecordReported
from shared.servicekit.consumer import Decoded, InboxConsumer, Subscriptions
from shared.servicekit.db import Connection

log = structlog.get_logger(__name__)
RECORDS_CONSUMER = "readiness-records"


async def on_group_created(conn: Connection, deps: Deps, event: GroupCreated,
                           envelope: Envelope) -> None:
    await service.group_created(conn, event.group_id, event.parent_group_id, event.name)


async def on_member_added(conn: Connection, deps: Deps, event: MemberAdded,
                          envelope: Envelope) -> None:
    await service.member_added(conn, event.group_id, event.customer_id, envelope.occurred_at)


async def on_member_removed(conn: Connection, deps: Deps, event: MemberRemoved,
                            envelope: Envelope) -> None:
    await service.member_removed(conn, event.group_id, event.customer_id)


async def on_customer(conn: Connection, deps: Deps,
                      event: CustomerAccountCreated | CustomerAccountUpdated,
                      envelope: Envelope) -> None:
    await service.customer_named(conn, event.account_id, event.first_name, event.last_name)


async def on_merged(conn: Connection, deps: Deps, event: CustomerAccountsMerged,
                    envelope: Envelope) -> None:
    moved = await service.accounts_merged(conn, event.survivor_id, event.merged_id, event.by)
    log.info("records_moved_by_merge", records=len(moved))


async def on_unmerged(conn: Connection, deps: Deps, event: CustomerAccountsUnmerged,
                      envelope: Envelope) -> None:
    moved = await service.accounts_unmerged(conn, event.survivor_id, event.merged_id,
                                            event.by)
    log.info("records_moved_by_unmerge", records=len(moved))


SUBSCRIPTIONS: Subscriptions = {
    GroupCreated: on_group_created,
    MemberAdded: on_member_added,
    MemberRemoved: on_member_removed,
    CustomerAccountCreated: on_customer,
    CustomerAccountUpdated: on_customer,
    CustomerAccountsMerged: on_merged,
    CustomerAccountsUnmerged: on_unmerged,
}

# -- the portal's records --------------------------------------------------------------

# set while RecordsConsumer applies a batch: the handler collects instead of writing
_pending: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "readiness_pending_records", default=None)


async def on_record(conn: Connection, deps: Deps, event: ReadinessRecordReported,
                    envelope: Envelope) -> None:
    # the record as the producer sent it (absent fields are None, which reads as absent)
    record = envelope.payload
    pending = _pending.get()
    if pending is not None:
        pending.append(record)
        return
    # one by one (the consumer retries a failed batch record by record)
    await service.ingest(conn, deps, service.lines([record]), "topic")


RECORD_SUBSCRIPTIONS: Subscriptions = {ReadinessRecordReported: on_record}


class RecordsConsumer(InboxConsumer):
    """The kit's inbox consumer, whose batch (inbox rows in one statement, then each new
    event's handler) ends in one set-based ingest of the batch's new records."""

    async def _apply_many(self, conn: Connection, tp: TopicPartition,
                          items: Sequence[Decoded]) -> None:
        token = _pending.set([])
        try:
            await super()._apply_many(conn, tp, items)
            pending = _pending.get()
            if pending:
                await service.ingest(conn, self.deps, service.lines(pending), "topic")
        finally:
            _pending.reset(token)
