"""Transactional outbox and the relay that publishes it.

``Outbox.add(conn, event)`` writes the event in the caller's transaction, so
the state change and its event commit or fail together. The relay claims
unpublished rows with ``FOR UPDATE SKIP LOCKED`` and a lease, sends them keyed
by subject, and marks them published. A row is never sent while an older row
of the same subject is unsent (or leased by another relay), so each subject's
events reach the broker in the order they were written.
"""

from __future__ import annotations

import asyncio
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


_CLAIM = """
WITH cand AS (
    SELECT id, subject FROM outbox
    WHERE published_at IS NULL AND (lease_until IS NULL OR lease_until < now())
    ORDER BY id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), blocked AS (
    -- a subject waits while any of its older unsent rows is held by someone else
    -- (LATERAL ... LIMIT 1: one index probe per subject, never a scan of the backlog)
    SELECT l.subject FROM (
        SELECT subject, max(id) AS last_id FROM cand GROUP BY subject
    ) l
    CROSS JOIN LATERAL (
        SELECT 1 FROM outbox p
        WHERE p.subject = l.subject AND p.published_at IS NULL AND p.id < l.last_id
          AND p.id NOT IN (SELECT id FROM cand)
        LIMIT 1
    ) held
)
UPDATE outbox o
SET lease_owner = $2, lease_until = now() + make_interval(secs => $3)
FROM cand
WHERE o.id = cand.id AND cand.subject NOT IN (SELECT subject FROM blocked)
RETURNING o.id, o.topic, o.subject, o.value
"""


class OutboxRelay:
    """Publishes the outbox of one database. Run several: they never send a row twice at once."""

    def __init__(
        self,
        dsn: str,
        pool: asyncpg.Pool,
        cfg: KafkaConfig,
        watch: BrokerWatch,
        *,
        batch_size: int = 500,
        lease_seconds: float = 30.0,
        poll_interval: float = 1.0,
        retention_hours: float = 168.0,
    ) -> None:
        self.dsn, self.pool, self.cfg, self.watch = dsn, pool, cfg, watch
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.retention_hours = retention_hours
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.published = 0
        watch.listeners.append(self.on_new_epoch)

    # -- broker epoch ---------------------------------------------------------

    async def on_new_epoch(self, previous: str | None, current: str) -> None:
        """Rows published into another epoch's log may never have been read: send them again."""
        async with self._lock:
            await self._drop_producer()
            resent = await self.pool.execute(
                "UPDATE outbox SET published_at = NULL, lease_owner = NULL, lease_until = NULL"
                " WHERE published_at IS NOT NULL AND broker_epoch IS DISTINCT FROM $1",
                current,
            )
        count = int(resent.split()[-1])
        if count:
            log.warning("outbox_resend", rows=count, epoch=current, previous=previous)
        self._wake.set()

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

    async def claim(self) -> list[OutboxRow]:
        async with self.pool.acquire() as conn, conn.transaction():
            # A queue table's statistics lag its backlog; with stale ones the
            # planner reads and sorts the whole backlog instead of walking the
            # partial index in id order. The index walk is right at any size.
            await conn.execute("SET LOCAL enable_bitmapscan = off")
            rows = await conn.fetch(_CLAIM, self.batch_size, self.owner, self.lease_seconds)
        rows = sorted(rows, key=lambda r: r["id"])
        return [OutboxRow(r["id"], r["topic"], r["subject"], r["value"]) for r in rows]

    async def publish_once(self) -> int:
        """Claim and send one batch. Returns rows published; raises on a broker failure."""
        async with self._lock:
            epoch = self.watch.epoch
            if epoch is None:
                raise BrokerNotReady("the broker has not been reached yet")
            rows = await self.claim()
            if not rows:
                return 0
            sent, error = await self._send(rows, epoch)
            if sent:
                await self.pool.execute(
                    "UPDATE outbox SET published_at = now(), broker_epoch = $2,"
                    " lease_owner = NULL, lease_until = NULL"
                    " WHERE id = ANY($1::bigint[]) AND lease_owner = $3",
                    [r.id for r in sent], epoch, self.owner,
                )
            if error is not None:
                sent_ids = {r.id for r in sent}
                unsent = [r.id for r in rows if r.id not in sent_ids]
                await self.pool.execute(
                    "UPDATE outbox SET lease_owner = NULL, lease_until = NULL,"
                    " attempts = attempts + 1, last_error = $2"
                    " WHERE id = ANY($1::bigint[]) AND lease_owner = $3",
                    unsent, error[:500], self.owner,
                )
                await self._drop_producer()
                raise ConnectionError(error)
            self.published += len(sent)
            return len(sent)

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
                if row.topic not in partitions:
                    partitions[row.topic] = sorted(await producer.partitions_for(row.topic))
                key = row.subject.encode()
                target = (row.topic, _partitioner(key, partitions[row.topic], None))
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
        result = await self.pool.execute(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(hours => $1)",
            self.retention_hours,
        )
        await self.pool.execute(
            "DELETE FROM inbox WHERE applied_at < now() - make_interval(hours => $1)",
            self.retention_hours * 2,
        )
        return int(result.split()[-1])

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
            except (OSError, asyncpg.PostgresError) as exc:
                log.info("outbox_listen_lost", error=type(exc).__name__)
            finally:
                if conn is not None:
                    await conn.close()
            await asyncio.sleep(self.poll_interval)

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen(), name="outbox-listen")
        backoff = 0.1
        last_prune = 0.0
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    n = await self.publish_once()
                    backoff = 0.1
                except BrokerNotReady:
                    await asyncio.sleep(0.1)
                    continue
                except (ConnectionError, OSError, asyncpg.PostgresError) as exc:
                    log.info("outbox_publish_failed", error=str(exc)[:200], retry_in=backoff)
                    self.watch.poke()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if loop.time() - last_prune > 600:
                    last_prune = loop.time()
                    await self.prune()
                if n < self.batch_size:
                    await wait_event(self._wake, self.poll_interval)
                    self._wake.clear()
        finally:
            listener.cancel()
            await self._drop_producer()
