"""Events the sync-iwds service consumes: event type -> handler.

The consumer subscribes to exactly these types' topics.
"""

from __future__ import annotations

from shared.schemas.envelope import Envelope
from shared.schemas.iwds import IwdsRawRecords
from shared.servicekit.consumer import Subscriptions
from shared.servicekit.db import Connection
from sync_iwds import service
from sync_iwds.deps import Deps


async def on_raw_records(conn: Connection, deps: Deps, event: IwdsRawRecords,
                         envelope: Envelope) -> None:
    """A streamed update from the raw topic: a partial run inside the inbox transaction,
    so the records, their events and the offset commit together (redelivery: no-op)."""
    await service.apply_records(conn, deps, feed=event.feed, records=list(event.records))


SUBSCRIPTIONS: Subscriptions = {IwdsRawRecords: on_raw_records}
