"""Transactional outbox and the relay that publishes it.

``Outbox.add(conn, event)`` writes the event in the caller's transaction, so
the state change and its event commit or fail together. The relay reads
the rows after its cursor whose transactions have ended (below the snapshot's
xmin), sends them keyed by subject, and moves its one cursor row: no update per
event. A row is never sent before an older (lower id) row of its subject, so
each subject's events reach the broker in the order they were written; one
relay per database sends at a time (an advisory lock per round).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from shared.schemas.base import Event
from shared.schemas.envelope import Envelope
from shared.servicekit.aio import wait_event
from shared.servicekit.broker import EPOCH_HEADER, BrokerWatch, KafkaConfig, new_producer
from shared.servicekit.db import Connection
from shared.servicekit.logs import causation_id, correlation_id
from shared.servicekit.topics import broker_topic

log = structlog.get_logger(__name__)
_partitioner = DefaultPartitioner()


async def add_raw(
    conn: Connection,
    *,
    event_id: uuid.UUID,
    topic: str,
    subject: str,
    event_type: str,
    value: bytes,
) -> None:
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, subject, event_type, value)"
        " VALUES ($1, $2, $3, $4, $5)",
        event_id, topic, subject, event_type, value,
    )


async def add_envelope(conn: Connection, envelope: Envelope, *, topic: str) -> None:
    await add_raw(
        conn,
        event_id=envelope.event_id,
        topic=topic,
        subject=envelope.subject,
        event_type=envelope.type,
        value=envelope.to_bytes(),
    )


@dataclass(frozen=True)
class Outbox:
    """A service's outbox: ``await OUTBOX.add(conn, SomethingHappened(...))``."""

    producer: str

    def _wrap(self, event: Event, subject: str | None = None) -> Envelope:
        return Envelope.wrap(
            event,
            producer=self.producer,
            subject=subject,
            correlation_id=correlation_id.get(),
            causation_id=causation_id.get(),
        )

    async def add(
        self, conn: Connection, event: Event, *, subject: str | None = None
    ) -> Envelope:
        _require_transaction(conn)
        envelope = self._wrap(event, subject)
        await add_envelope(conn, envelope, topic=event.TOPIC)
        return envelope

    async def add_many(self, conn: Connection, events: Sequence[Event]) -> list[Envelope]:
        """Many events with one COPY (bulk use cases); order is kept."""
        _require_transaction(conn)
        envelopes = [self._wrap(e) for e in events]
        await conn.copy_records_to_table(
            "outbox", columns=("event_id", "topic", "subject", "event_type", "value"),
            records=[(env.event_id, e.TOPIC, env.subject, env.type, env.to_bytes())
                     for env, e in zip(envelopes, events, strict=True)],
        )
        return envelopes


def _require_transaction(conn: Connection) -> None:
    if not conn.is_in_transaction():
        raise RuntimeError("outbox events are written inside the use case's transaction")


class BrokerNotReady(ConnectionError):
    """No broker epoch is known yet: nothing can be sent."""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    subject: str
    value: bytes
    xid: int = 0


@dataclass(frozen=True)
class Cursor:
    """The relay's place: every row at or before (xid, id) has been sent into ``epoch``."""

    epoch: str | None
    xid: int
    id: int
    marked_xid: int
    marked_id: int


# One relay per database sends at a time; the others stand by (the key spells "CSOR").
RELAY_LOCK_KEY = 0x43534F52

# Rows after the cursor, in (transaction id, id) order, of transactions that
# ended before every transaction still running began: a transaction that is
# still open, or commits late, has an xid at or above the snapshot's xmin, so
# its rows come after the cursor whenever they become visible.
_BATCH = """
SELECT o.id, o.xid::text::bigint AS xid_value, o.topic, o.subject, o.value FROM outbox o
WHERE (o.xid, o.id) > ($1::text::xid8, $2::bigint)
  AND o.xid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY o.xid, o.id
LIMIT $3
"""

# Rows after the batch with a lower id than the batch's newest, per subject:
# one walk of the (xid, id) index past the batch with the id bound checked in
# the index (no heap visit but for a real candidate, rare).
_LATER = """
SELECT p.subject, min(p.id) AS id FROM outbox p
WHERE p.xid = $1::text::xid8 AND p.id > $2 AND p.id < $3
   OR p.xid > $1::text::xid8 AND p.id < $3
GROUP BY p.subject
"""

_MARK = """
WITH c AS (
    SELECT id FROM outbox
    WHERE (xid, id) > ($1::text::xid8, $2::bigint) AND (xid, id) <= ($3::text::xid8, $4::bigint)
    ORDER BY xid, id
    LIMIT $5
)
UPDATE outbox o SET published_at = now(), broker_epoch = $6
FROM c WHERE o.id = c.id
RETURNING o.xid::text::bigint AS xid, o.id
"""


def _hold_back(rows: list[OutboxRow], later: dict[str, int]) -> list[OutboxRow]:
    """The longest prefix (in cursor order) that never sends a row of a subject
    before an older (lower id) row of that subject that stays unsent.

    ``later``: per subject, the lowest id of its rows after the batch. Rows
    (xid, id)-ordered may disagree with id order across transactions (a
    transaction that took its xid early and wrote a subject's event after
    another one committed); such a row waits until the older one is in a batch.
    """
    keep = len(rows)
    while True:
        first_dropped: dict[str, int] = dict(later)
        for r in rows[keep:]:
            if r.id < first_dropped.get(r.subject, r.id + 1):
                first_dropped[r.subject] = r.id
        cut = next(
            (i for i, r in enumerate(rows[:keep])
             if first_dropped.get(r.subject, r.id + 1) < r.id),
            None,
        )
        if cut is None:
            return rows[:keep]
        keep = cut


class OutboxRelay:
    """Publishes the outbox of one database.

    Each round takes an advisory lock for the round's transaction: one relay
    of a database sends at a time, any other stands by and takes over at its
    next round. A round reads the rows after the cursor (see ``_BATCH``),
    sends them (a subject's rows in id order), and moves the cursor: one row
    updated per batch, none per event.
    """

    def __init__(
        self,
        dsn: str,
        pool: asyncpg.Pool,
        cfg: KafkaConfig,
        watch: BrokerWatch,
        *,
        batch_size: int = 500,
        lease_seconds: float = 30.0,  # kept for callers; rows are no longer leased
        poll_interval: float = 1.0,
        retention_hours: float = 168.0,
        mark_published: bool = True,
        mark_batch: int = 5000,
        mark_delay: float | None = None,
    ) -> None:
        self.dsn, self.pool, self.cfg, self.watch = dsn, pool, cfg, watch
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.retention_hours = retention_hours
        self.mark_published = mark_published
        self.mark_batch = mark_batch
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.published = 0
        self.active = False  # held the lock in its last round
        # published_at is filled in once the relay has been idle this long
        self.mark_delay = min(poll_interval, 1.0) if mark_delay is None else mark_delay
        self._unmarked = False
        watch.listeners.append(self.on_new_epoch)

    # -- broker epoch ---------------------------------------------------------

    async def on_new_epoch(self, previous: str | None, current: str) -> None:
        """A new broker log: the next round starts the cursor again (see ``_restart``)."""
        async with self._lock:
            await self._drop_producer()
        self._wake.set()

    async def _restart(self, conn: Connection, cursor: Cursor, epoch: str) -> Cursor:
        """Rows sent into another epoch's log may never have been read: send them again."""
        resent = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE (xid, id) <= ($1::text::xid8, $2::bigint)",
            str(cursor.xid), cursor.id,
        )
        await conn.execute(
            "UPDATE outbox_cursor SET broker_epoch = $1, xid = '0', id = 0,"
            " marked_xid = '0', marked_id = 0, updated_at = now() WHERE name = 'relay'",
            epoch,
        )
        await conn.execute(
            "UPDATE outbox SET published_at = NULL WHERE published_at IS NOT NULL"
        )
        if resent:
            log.warning("outbox_resend", rows=resent, epoch=epoch, previous=cursor.epoch)
        return Cursor(epoch, 0, 0, 0, 0)

    # -- producer ---------------------------------------------------------------

    async def _get_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = new_producer(self.cfg)
            await producer.start()
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), 5)
            except Exception as exc:  # a broken client is thrown away either way
                log.debug("producer_stop_failed", error=repr(exc))

    # -- one round ------------------------------------------------------------

    async def _cursor(self, conn: Connection) -> Cursor:
        row = await conn.fetchrow(
            "SELECT broker_epoch, xid::text::bigint AS xid, id, marked_xid::text::bigint"
            " AS marked_xid, marked_id FROM outbox_cursor WHERE name = 'relay'"
        )
        if row is None:  # made by the migration; an operator may have removed it
            await conn.execute(
                "INSERT INTO outbox_cursor (name, xid, id, marked_xid, marked_id)"
                " VALUES ('relay', '0', 0, '0', 0) ON CONFLICT DO NOTHING"
            )
            return Cursor(None, 0, 0, 0, 0)
        return Cursor(row["broker_epoch"], row["xid"], row["id"], row["marked_xid"],
                      row["marked_id"])

    async def _batch(self, conn: Connection, cursor: Cursor) -> list[OutboxRow]:
        limit = self.batch_size
        while True:
            found = await conn.fetch(_BATCH, str(cursor.xid), cursor.id, limit)
            rows = [OutboxRow(r["id"], r["topic"], r["subject"], r["value"], r["xid_value"])
                    for r in found]
            if not rows:
                return []
            last = rows[-1]
            later = {
                r["subject"]: r["id"]
                for r in await conn.fetch(
                    _LATER, str(last.xid), last.id, max(r.id for r in rows))
            }
            kept = _hold_back(rows, later)
            if kept or len(rows) < limit or limit >= 50 * self.batch_size:
                return kept
            limit *= 10  # the row everything waits for is past the limit: look further

    async def publish_once(self, *, mark: bool = True) -> int:
        """Send one batch. Returns rows published (0 when another relay is active);
        raises on a broker failure. With nothing to send, and ``mark``, fills in
        published_at behind the cursor (a slice)."""
        async with self._lock:
            epoch = self.watch.epoch
            if epoch is None:
                raise BrokerNotReady("the broker has not been reached yet")
            async with self.pool.acquire() as conn, conn.transaction():
                self.active = bool(
                    await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", RELAY_LOCK_KEY)
                )
                if not self.active:
                    return 0  # another relay is sending: stand by
                cursor = await self._cursor(conn)
                if cursor.epoch != epoch:
                    if (cursor.epoch is not None and cursor.epoch > epoch
                            and not await self.watch.settle_epoch(cursor.epoch)):
                        self.watch.poke()  # our view of the broker is behind
                        return 0
                    # the cursor's epoch is older, or dead (a marker that lost the race
                    # to be the broker's epoch): send everything again into ours
                    cursor = await self._restart(conn, cursor, epoch)
                rows = await self._batch(conn, cursor)
                if not rows:
                    if mark:
                        self._unmarked = await self._mark(conn, cursor)
                    else:
                        self._unmarked = (cursor.marked_xid, cursor.marked_id) < (
                            cursor.xid, cursor.id)
                    return 0
                sent, error = await self._send(sorted(rows, key=lambda r: r.id), epoch)
                sent_ids = {r.id for r in sent}
                done = 0  # the cursor moves over the rows sent, up to the first unsent one
                while done < len(rows) and rows[done].id in sent_ids:
                    done += 1
                if done:
                    await conn.execute(
                        "UPDATE outbox_cursor SET xid = $1::text::xid8, id = $2,"
                        " updated_at = now() WHERE name = 'relay'",
                        str(rows[done - 1].xid), rows[done - 1].id,
                    )
            if error is not None:
                await self._drop_producer()
                raise ConnectionError(error)
            self.published += done
            return done

    async def _mark(self, conn: Connection, cursor: Cursor) -> bool:
        """Fill in published_at behind the cursor, a slice at a time, while idle.

        Nothing relies on it (the cursor says what was sent); it is there for
        people and tests that ask ``WHERE published_at IS NULL``. Returns
        whether more rows are waiting to be marked.
        """
        if not self.mark_published or (cursor.marked_xid, cursor.marked_id) >= (
            cursor.xid, cursor.id
        ):
            return False
        marked = await conn.fetch(
            _MARK, str(cursor.marked_xid), cursor.marked_id, str(cursor.xid), cursor.id,
            self.mark_batch, cursor.epoch,
        )
        end = (max((r["xid"], r["id"]) for r in marked) if len(marked) == self.mark_batch
               else (cursor.xid, cursor.id))
        await conn.execute(
            "UPDATE outbox_cursor SET marked_xid = $1::text::xid8, marked_id = $2"
            " WHERE name = 'relay'",
            str(end[0]), end[1],
        )
        return len(marked) == self.mark_batch

    async def _send(
        self, rows: Sequence[OutboxRow], epoch: str
    ) -> tuple[list[OutboxRow], str | None]:
        """Send rows; return those that may be marked published, and the first error.

        Rows are grouped into one record batch per partition (the partition the
        default Kafka partitioner gives the subject), which costs far less per
        record than one ``send()`` each; a partition's batches go out in order.
        """
        headers = [(EPOCH_HEADER, epoch.encode())]
        futures: list[asyncio.Future[object]] = []
        row_future: list[int] = []  # index into futures, per row
        try:
            producer = await self._get_producer()
            partitions: dict[str, list[int]] = {}
            open_batches: dict[tuple[str, int], tuple[Any, list[int]]] = {}

            async def flush(target: tuple[str, int]) -> None:
                batch, members = open_batches.pop(target)
                fut = await producer.send_batch(batch, target[0], partition=target[1])
                futures.append(fut)
                for i in members:
                    row_future[i] = len(futures) - 1

            for i, row in enumerate(rows):
                row_future.append(-1)
                topic = broker_topic(row.topic)
                if topic not in partitions:
                    partitions[topic] = sorted(await producer.partitions_for(topic))
                key = row.subject.encode()
                target = (topic, _partitioner(key, partitions[topic], None))
                if target not in open_batches:
                    open_batches[target] = (producer.create_batch(), [])
                batch, _members = open_batches[target]
                if batch.append(key=key, value=row.value, timestamp=None, headers=headers) is None:
                    await flush(target)  # full: send it, start the next one
                    batch = producer.create_batch()
                    open_batches[target] = (batch, [])
                    if batch.append(
                        key=key, value=row.value, timestamp=None, headers=headers
                    ) is None:
                        raise ValueError(f"outbox row {row.id} is larger than a record batch")
                open_batches[target][1].append(i)
            for target in list(open_batches):
                await flush(target)
            timeout = self.cfg.request_timeout_ms / 1000 + 5
            outcomes = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), timeout
            )
        except Exception as exc:
            for f in futures:
                f.cancel()
            return [], f"{type(exc).__name__}: {exc}"
        results = [outcomes[k] for k in row_future]
        # A subject's rows count as sent only up to its first failure, so a
        # retry never puts a later event of that subject before an earlier one.
        failed_subjects: set[str] = set()
        sent: list[OutboxRow] = []
        first_error: str | None = None
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException) or row.subject in failed_subjects:
                failed_subjects.add(row.subject)
                if first_error is None and isinstance(result, BaseException):
                    first_error = f"{type(result).__name__}: {result}"
                continue
            sent.append(row)
        return sent, first_error

    async def prune(self) -> int:
        """Delete sent rows past retention, oldest first, a slice per statement."""
        total = 0
        while True:
            result = await self.pool.execute(
                "DELETE FROM outbox WHERE id IN ("
                "  SELECT o.id FROM outbox o, outbox_cursor c"
                "  WHERE c.name = 'relay' AND (o.xid, o.id) <= (c.xid, c.id)"
                "  ORDER BY o.xid, o.id LIMIT 10000)"
                " AND coalesce(published_at, created_at) < now() - make_interval(hours => $1)",
                self.retention_hours,
            )
            deleted = int(result.split()[-1])
            total += deleted
            if deleted < 10000:
                break
        await self.pool.execute(
            "DELETE FROM inbox WHERE applied_at < now() - make_interval(hours => $1)",
            self.retention_hours * 2,
        )
        return total

    # -- the loop ---------------------------------------------------------------

    async def _listen(self) -> None:
        """Wake the relay on NOTIFY; reconnect when the connection drops."""
        while True:
            conn: Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn)
                await conn.add_listener("outbox", lambda *_: self._wake.set())
                self._wake.set()
                while not conn.is_closed():
                    await asyncio.sleep(self.poll_interval)
            except Exception as exc:
                log.info("outbox_listen_lost", error=type(exc).__name__)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(self.poll_interval)

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen(), name="outbox-listen")
        backoff = 0.1
        last_prune = 0.0
        marking = False
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    # published_at is filled in only once the relay has been idle
                    # for mark_delay: never on the way of events being sent
                    n = await self.publish_once(mark=marking)
                    backoff = 0.1
                except BrokerNotReady:
                    await asyncio.sleep(0.1)
                    continue
                except Exception as exc:
                    # a broker or PostgreSQL failure (asyncpg's InterfaceError included:
                    # a connection terminated mid-transaction); the next round starts over
                    log.info("outbox_publish_failed", error=f"{type(exc).__name__}: {exc}"[:200],
                             retry_in=backoff)
                    self.watch.poke()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if loop.time() - last_prune > 600:
                    last_prune = loop.time()
                    try:
                        await self.prune()
                    except Exception as exc:
                        log.info("outbox_prune_failed", error=type(exc).__name__)
                if n:
                    marking = False
                    continue  # more may be waiting: a round that finds nothing is cheap
                if marking and self._unmarked:
                    continue  # the next slice
                if self._unmarked and self.active:
                    marking = not await wait_event(self._wake, self.mark_delay)
                    if marking:
                        continue
                else:
                    await wait_event(self._wake, self.poll_interval)
                self._wake.clear()
        finally:
            listener.cancel()
            await self._drop_producer()
