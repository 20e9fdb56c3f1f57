"""Idempotent consumer (inbox), dead letters, and the supervisor.

Each record's effect, its inbox row (consumer, event id, topic, partition,
offset) and the consumer's next offset commit in one PostgreSQL transaction,
so a redelivered event changes nothing and a restarted consumer resumes from
the offset stored in PostgreSQL (the broker's commit is only a hint). A
handler that keeps failing sends its event to the dead-letter table and to
``<topic>.dlq`` (through the outbox) and the consumer moves on.

A partition's records are applied a poll at a time: one statement writes the
poll's inbox rows and its next offset, then the handlers run in record order
in the same transaction (a ``BatchHandler`` takes each run of consecutive
events of its type in one call). When the batch fails, it is split in halves
until the failing event stands alone; that one is retried and dead-lettered,
its neighbours are applied. A database that is momentarily unable (SQLSTATE
class 08, 40, 53 or 57) is not the handler's fault: the batch is retried with
backoff for as long as it takes, the partition's fetching paused meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from shared.schemas.base import Event
from shared.schemas.envelope import Envelope
from shared.servicekit.aio import wait_event
from shared.servicekit.broker import EPOCH_HEADER, BrokerWatch, KafkaConfig, new_consumer
from shared.servicekit.db import Connection
from shared.servicekit.logs import bound_context
from shared.servicekit.outbox import add_raw
from shared.servicekit.topics import broker_topic, logical_topic

log = structlog.get_logger(__name__)

Batch = Sequence[ConsumerRecord[bytes, bytes]]
# ``async def h(conn, deps, event, envelope)``: runs inside the consumer's inbox
# transaction with the service's deps, and calls the service's use cases.
Handler = Callable[[Connection, Any, Any, Envelope], Awaitable[None]]
# ``async def h(conn, deps, items)``: ``items`` is a list of (event, envelope) in order
BatchFunction = Callable[[Connection, Any, list[tuple[Any, Envelope]]], Awaitable[None]]


@dataclass(frozen=True)
class BatchHandler:
    """A handler that applies many events of its type in one call.

    Used as a per-event handler (``Subscriptions`` value, DLQ replay, an event
    isolated after a failing batch) it calls ``one`` when given, else the batch
    function with a single item::

        @batch_handler
        async def on_things(conn, deps, items): ...
        SUBSCRIPTIONS = {ThingHappened: on_things}
    """

    batch: BatchFunction
    one: Handler | None = None

    async def __call__(self, conn: Connection, deps: Any, event: Any, envelope: Envelope) -> None:
        if self.one is not None:
            await self.one(conn, deps, event, envelope)
        else:
            await self.batch(conn, deps, [(event, envelope)])


def batch_handler(fn: BatchFunction) -> BatchHandler:
    return BatchHandler(fn)


# event class -> its handler: the consumer subscribes to exactly these types' topics
Subscriptions = Mapping[type[Event], Handler]

# SQLSTATE classes of a database that cannot do the work right now: connection
# exception, transaction rollback (serialization, deadlock), insufficient
# resources, operator intervention (shutdown, cancel). Never the event's fault.
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57"})


def is_transient(exc: BaseException) -> bool:
    """A database error that says nothing about the event being applied."""
    state = getattr(exc, "sqlstate", None)
    return isinstance(exc, asyncpg.PostgresError) and isinstance(state, str) and (
        state[:2] in TRANSIENT_SQLSTATE_CLASSES)


def _is_connection_loss(exc: BaseException) -> bool:
    """The client lost its connection: the supervisor recreates the consumer."""
    return isinstance(exc, asyncpg.PostgresConnectionError | OSError | asyncpg.InterfaceError)
_DLQ_NS = uuid.UUID("5d7e1c1e-2b55-4a0e-9a53-6b1d1d0c2a10")


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def subscribed_topics(subscriptions: Subscriptions) -> list[str]:
    """The broker's names of the topics these subscriptions read."""
    return sorted({broker_topic(event_class.TOPIC) for event_class in subscriptions})


@dataclass(frozen=True)
class Route:
    """What the consumer does with one event type: decode it, and apply it."""

    event_class: type[Event]
    handler: Handler


def routes_of(subscriptions: Subscriptions) -> dict[str, Route]:
    return {cls.TYPE: Route(cls, handler) for cls, handler in subscriptions.items()}


class PoisonMessage(Exception):
    """A record that can never be applied (unreadable, or not a valid event)."""


class EpochAhead(Exception):
    """A record from a broker epoch this consumer has not seen yet."""


@dataclass(frozen=True)
class Decoded:
    record: ConsumerRecord[bytes, bytes]
    event_id: uuid.UUID
    envelope: Envelope | None = None
    payload: Any = None
    handler: Handler | None = None
    poison: str | None = None


def _record_event_id(record: ConsumerRecord[bytes, bytes], epoch: str) -> uuid.UUID:
    return uuid.uuid5(_DLQ_NS, f"{epoch}:{record.topic}:{record.partition}:{record.offset}")


class InboxConsumer:
    """Applies the events of its subscriptions exactly once per consumer name."""

    def __init__(
        self,
        name: str,
        pool: asyncpg.Pool,
        cfg: KafkaConfig,
        watch: BrokerWatch,
        subscriptions: Subscriptions,
        *,
        deps: Any = None,
        mode: str = "group",
        max_attempts: int = 5,
        retry_base_seconds: float = 0.2,
        batch_records: int = 2000,
    ) -> None:
        self.name, self.pool, self.cfg, self.watch = name, pool, cfg, watch
        self.routes = routes_of(subscriptions)
        self.deps = deps
        self.topics = subscribed_topics(subscriptions)
        self.mode = mode
        self.max_attempts = max_attempts
        self.retry_base = retry_base_seconds
        self.batch_records = batch_records
        self.applied = 0
        self.assigned: set[TopicPartition] = set()
        self.unassigned_since: float | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._backlogs: dict[TopicPartition, deque[Batch]] = {}
        self._ready: dict[TopicPartition, asyncio.Event] = {}
        self._paused: set[TopicPartition] = set()
        self._next_offset: dict[TopicPartition, int] = {}  # the batch being applied
        self.backlog_limit = 4
        self._workers: dict[TopicPartition, asyncio.Task[None]] = {}
        self._epoch: str = ""

    # -- offsets ---------------------------------------------------------------

    async def _seek_stored(
        self, consumer: AIOKafkaConsumer, parts: Sequence[TopicPartition]
    ) -> None:
        rows = await self.pool.fetch(
            "SELECT topic, partition, next_offset FROM consumer_offsets"
            " WHERE consumer = $1 AND broker_epoch = $2 AND topic = ANY($3::text[])",
            self.name, self._epoch, self.topics,
        )
        stored = {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
        for tp in parts:
            if tp in stored:
                consumer.seek(tp, stored[tp])
            else:
                await consumer.seek_to_beginning(tp)
        self.assigned = set(parts)
        self.unassigned_since = None if parts else time.monotonic()
        log.info("consumer_assigned", consumer=self.name, partitions=len(parts))

    # -- decoding ---------------------------------------------------------------

    def _decode(self, record: ConsumerRecord[bytes, bytes]) -> Decoded | None:
        """None: not for us (another type, or a stale copy from a lost log)."""
        headers = dict(record.headers or ())
        sent_in = headers.get(EPOCH_HEADER)
        if sent_in is not None and sent_in.decode() != self._epoch:
            if sent_in.decode() < self._epoch or sent_in.decode() in self.watch.dead_epochs:
                return None  # written into a log the broker lost; the outbox sends it again
            raise EpochAhead(sent_in.decode())
        try:
            if record.value is None:
                raise ValueError("empty record")
            envelope = Envelope.from_bytes(record.value)
        except (ValueError, ValidationError) as exc:
            return Decoded(record, _record_event_id(record, self._epoch), poison=_reason(exc))
        route = self.routes.get(envelope.type)
        if route is None:
            return None
        try:
            payload = route.event_class.model_validate(envelope.payload)
        except ValidationError as exc:
            return Decoded(record, envelope.event_id, envelope, poison=_reason(exc))
        return Decoded(record, envelope.event_id, envelope, payload, route.handler)

    # -- applying ----------------------------------------------------------------

    async def _apply(self, conn: Connection, item: Decoded) -> None:
        r = item.record
        new = await conn.fetchval(
            'INSERT INTO inbox (consumer, event_id, topic, partition, "offset")'
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
            self.name, item.event_id, r.topic, r.partition, r.offset,
        )
        if new:
            await self._handle(conn, item)

    async def _handle(self, conn: Connection, item: Decoded) -> None:
        if item.handler is not None and item.envelope is not None:
            with bound_context(
                request_id=item.envelope.correlation_id, cause=str(item.envelope.event_id)
            ):
                await item.handler(conn, self.deps, item.payload, item.envelope)
            self.applied += 1

    async def _handle_run(self, conn: Connection, run: list[Decoded]) -> None:
        """Consecutive new events with one handler: one call for a batch handler."""
        handler = run[0].handler
        if isinstance(handler, BatchHandler) and len(run) > 1:
            await handler.batch(
                conn, self.deps, [(d.payload, d.envelope) for d in run]  # type: ignore[misc]
            )
            self.applied += len(run)
            return
        for d in run:
            await self._handle(conn, d)

    # The poll's inbox rows and the partition's next offset in one statement.
    _INBOX_AND_OFFSET = """
    WITH inbox_rows AS (
        INSERT INTO inbox (consumer, event_id, topic, partition, "offset")
        SELECT $1, e, $2, $3, o FROM unnest($4::uuid[], $5::bigint[]) AS t(e, o)
        ON CONFLICT DO NOTHING RETURNING event_id
    ), next_offset AS (
        INSERT INTO consumer_offsets (consumer, topic, partition, broker_epoch, next_offset)
        VALUES ($1, $2, $3, $6, $7)
        ON CONFLICT (consumer, topic, partition, broker_epoch)
        DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
    )
    SELECT event_id FROM inbox_rows
    """

    async def _apply_many(
        self, conn: Connection, tp: TopicPartition, items: Sequence[Decoded]
    ) -> None:
        """Inbox rows and offset for a whole batch in one statement, then the handlers
        of the new events in order (runs of one batch handler in one call).

        The offset stored is the one ``_apply_range`` set for the partition
        (services may override this method with this signature)."""
        nxt = self._next_offset[tp]
        new = {
            row[0]
            for row in await conn.fetch(
                self._INBOX_AND_OFFSET, self.name, tp.topic, tp.partition,
                [d.event_id for d in items], [d.record.offset for d in items],
                self._epoch, nxt,
            )
        }
        run: list[Decoded] = []
        for d in items:
            if d.event_id not in new:
                continue
            new.discard(d.event_id)  # the same event twice in one batch: once
            if d.handler is None or d.envelope is None:
                continue
            if run and run[0].handler is not d.handler:
                await self._handle_run(conn, run)
                run = []
            run.append(d)
        if run:
            await self._handle_run(conn, run)

    async def _store_offset(self, conn: Connection, tp: TopicPartition, nxt: int) -> None:
        await conn.execute(
            "INSERT INTO consumer_offsets (consumer, topic, partition, broker_epoch, next_offset)"
            " VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (consumer, topic, partition, broker_epoch)"
            " DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()",
            self.name, tp.topic, tp.partition, self._epoch, nxt,
        )

    async def _until_done(self, what: str, attempt: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``attempt`` again, with backoff and no limit, while the database is
        transiently unable; the partition waits (its fetching pauses when its
        backlog fills). Lost connections and handler failures are raised."""
        delay = self.retry_base
        while True:
            try:
                return await attempt()
            except Exception as exc:
                if _is_connection_loss(exc) or not is_transient(exc):
                    raise
                log.warning("consumer_db_busy", consumer=self.name, step=what,
                            sqlstate=getattr(exc, "sqlstate", None), error=_reason(exc),
                            retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _apply_batch(
        self, tp: TopicPartition, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> None:
        items = [(r, self._decode(r)) for r in records]
        await self._apply_range(tp, items)

    async def _apply_range(
        self, tp: TopicPartition, items: list[tuple[ConsumerRecord[bytes, bytes], Decoded | None]]
    ) -> None:
        """Apply records in one transaction; on a handler's failure, split in halves
        until the failing record stands alone (its neighbours applied in order)."""
        if len(items) == 1:
            await self._apply_single(tp, *items[0])
            return

        async def attempt() -> bool:
            if any(d is not None and d.poison for _, d in items):
                return False
            try:
                self._next_offset[tp] = items[-1][0].offset + 1
                async with self.pool.acquire() as conn, conn.transaction():
                    await self._apply_many(conn, tp, [d for _, d in items if d is not None])
                return True
            except Exception as exc:
                if _is_connection_loss(exc) or is_transient(exc):
                    raise
                log.info("consumer_batch_failed", consumer=self.name, records=len(items),
                         error=_reason(exc))
                return False

        if await self._until_done("batch", attempt):
            return
        mid = len(items) // 2
        await self._apply_range(tp, items[:mid])
        await self._apply_range(tp, items[mid:])

    async def _apply_single(
        self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes], d: Decoded | None
    ) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                if d is not None and d.poison:
                    raise PoisonMessage(d.poison)

                async def once(d: Decoded | None = d) -> None:
                    async with self.pool.acquire() as conn, conn.transaction():
                        if d is not None:
                            await self._apply(conn, d)
                        await self._store_offset(conn, tp, record.offset + 1)

                await self._until_done("event", once)
                return
            except Exception as exc:
                if _is_connection_loss(exc):
                    raise
                permanent = isinstance(exc, PoisonMessage)
                if permanent or attempt >= self.max_attempts:
                    assert d is not None  # records we skip never fail
                    await self._until_done("dead_letter", functools.partial(
                        self._dead_letter, tp, record, d, _reason(exc), attempt))
                    return
                delay = min(self.retry_base * 2 ** (attempt - 1), 30.0)
                log.warning(
                    "handler_failed", consumer=self.name, attempt=attempt,
                    error=_reason(exc), retry_in=delay,
                    event_type=d.envelope.type if d and d.envelope else None,
                )
                await asyncio.sleep(delay)

    async def _dead_letter(
        self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes], d: Decoded,
        reason: str, attempts: int,
    ) -> None:
        value = record.value or b""
        doc = {
            "consumer": self.name,
            "reason": reason,
            "attempts": attempts,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "event_id": str(d.event_id),
            "value": value.decode("utf-8", errors="replace"),
        }
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO dead_letter (consumer, event_id, event_type, topic, partition,"
                ' "offset", key, value, error, attempts) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)',
                self.name, d.event_id, d.envelope.type if d.envelope else None,
                record.topic, record.partition, record.offset, record.key, value, reason, attempts,
            )
            await add_raw(
                conn,
                event_id=uuid.uuid5(_DLQ_NS, f"{self.name}:{d.event_id}"),
                topic=dlq_topic(logical_topic(record.topic)),
                subject=(record.key or b"").decode("utf-8", errors="replace"),
                event_type="DeadLetter",
                value=json.dumps(doc).encode(),
            )
            await conn.execute(
                'INSERT INTO inbox (consumer, event_id, topic, partition, "offset")'
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                self.name, d.event_id, record.topic, record.partition, record.offset,
            )
            await self._store_offset(conn, tp, record.offset + 1)
        log.error(
            "dead_lettered", consumer=self.name, topic=record.topic,
            partition=record.partition, offset=record.offset, reason=reason,
        )

    # -- the loop ----------------------------------------------------------------

    async def run(self) -> None:
        """Consume until cancelled. Raises when the client must be recreated."""
        epoch = self.watch.epoch
        while epoch is None:
            await asyncio.sleep(0.2)
            epoch = self.watch.epoch
        self._epoch = epoch
        group_id = self.name if self.mode == "group" else None
        consumer = new_consumer(self.cfg, group_id=group_id)
        self._consumer = consumer
        await consumer.start()
        try:
            if group_id is None:
                parts = await self._all_partitions(consumer)
                consumer.assign(parts)
                await self._seek_stored(consumer, parts)
            else:
                self.unassigned_since = time.monotonic()
                consumer.subscribe(self.topics, listener=_Rebalance(self, consumer))
            await self._fetch_loop(consumer)
        finally:
            await self._stop_workers(list(self._workers))
            self._consumer = None
            try:
                await asyncio.wait_for(consumer.stop(), 5)
            except Exception as exc:
                log.debug("consumer_stop_failed", error=repr(exc))

    # Fetching and applying overlap: the loop below fetches and hands each
    # partition's records to that partition's worker, which applies them in
    # order while the next fetch is under way. Partitions are independent (a
    # subject lives in one), so their workers run side by side.

    async def _fetch_loop(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=self.batch_records)
            for tp, records in batch.items():
                if records:
                    self._enqueue(consumer, tp, records)
            for task in self._workers.values():
                if task.done():
                    task.result()  # a worker failed: raise, the supervisor recreates us

    def _enqueue(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: Batch
    ) -> None:
        """Hand records to the partition's worker; a partition that is behind (or
        waiting for the database) is paused, the others keep being fetched."""
        backlog = self._backlogs.get(tp)
        if backlog is None:
            backlog = self._backlogs[tp] = deque()
            ready = self._ready[tp] = asyncio.Event()
            self._workers[tp] = asyncio.create_task(
                self._worker(consumer, tp, backlog, ready),
                name=f"consumer-{self.name}-{tp.partition}",
            )
        backlog.append(records)
        self._ready[tp].set()
        if len(backlog) >= self.backlog_limit and tp not in self._paused:
            consumer.pause(tp)
            self._paused.add(tp)

    async def _worker(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition,
        backlog: deque[Batch], ready: asyncio.Event,
    ) -> None:
        while True:
            await ready.wait()
            ready.clear()
            while backlog:
                records = list(backlog.popleft())
                while backlog and len(records) < self.batch_records:
                    records.extend(backlog.popleft())
                if tp in self._paused and len(backlog) < self.backlog_limit // 2:
                    self._paused.discard(tp)
                    if tp in consumer.assignment():
                        consumer.resume(tp)
                await self._apply_batch(tp, records)
                if self.mode == "group":
                    await self._commit_hint(consumer, tp, records[-1].offset + 1)

    async def _stop_workers(self, partitions: list[TopicPartition]) -> None:
        tasks = [self._workers.pop(tp) for tp in partitions if tp in self._workers]
        for tp in partitions:
            self._backlogs.pop(tp, None)
            self._ready.pop(tp, None)
            self._paused.discard(tp)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _all_partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """Every partition of the subscribed topics (metadata can lag a fresh topic)."""
        for _ in range(50):
            await consumer.topics()  # refreshes metadata for every topic
            found = {t: consumer.partitions_for_topic(t) for t in self.topics}
            if all(found.values()):
                return [TopicPartition(t, p) for t in self.topics for p in sorted(found[t] or ())]
            await asyncio.sleep(0.1)
        missing = [t for t, parts in found.items() if not parts]
        raise RuntimeError(f"no partitions known for {', '.join(missing)}")

    async def _commit_hint(self, consumer: AIOKafkaConsumer, tp: TopicPartition, nxt: int) -> None:
        try:
            await asyncio.wait_for(consumer.commit({tp: nxt}), 2)
        except Exception as exc:  # PostgreSQL holds the truth
            log.debug("broker_commit_failed", error=type(exc).__name__)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: InboxConsumer, consumer: AIOKafkaConsumer) -> None:
        self.owner, self.consumer = owner, consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.owner.assigned -= set(revoked)
        await self.owner._stop_workers(list(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.owner._seek_stored(self.consumer, sorted(assigned))


def _reason(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text[:1000]


class Supervisor:
    """Keeps a consumer running: recreates it when it dies, when the broker's
    epoch changes, or when it has had no partition for too long."""

    def __init__(
        self,
        make: Callable[[], InboxConsumer],
        watch: BrokerWatch,
        *,
        unassigned_grace: float = 60.0,
    ) -> None:
        self.make = make
        self.watch = watch
        self.unassigned_grace = unassigned_grace
        self.current: InboxConsumer | None = None
        self.restarts = 0
        self._restart = asyncio.Event()
        watch.listeners.append(self._on_epoch)

    async def _on_epoch(self, previous: str | None, current: str) -> None:
        if previous is not None:
            self._restart.set()

    def restart(self) -> None:
        self._restart.set()

    async def run(self) -> None:
        backoff = 0.2
        while True:
            consumer = self.make()
            self.current = consumer
            task = asyncio.create_task(consumer.run(), name=f"consumer-{consumer.name}")
            reason: str | None = None
            try:
                reason = await self._watch(consumer, task)
            finally:
                if not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            failure = None if task.cancelled() else task.exception()
            if isinstance(failure, EpochAhead):
                seen = str(failure)
                await self.watch.check()
                # a marker that lost the race to be the epoch: its records are stale
                if seen != self.watch.epoch and await self.watch.settle_epoch(seen):
                    reason = f"a record from a dead broker epoch ({seen}): skipped"
                else:
                    reason = "a record from a newer broker epoch"
            elif failure is not None:
                reason = _reason(failure)
            self.restarts += 1
            log.warning("consumer_restart", consumer=consumer.name, reason=reason)
            healthy = failure is None or isinstance(failure, EpochAhead)
            backoff = 0.2 if healthy else min(backoff * 2, 5.0)
            await asyncio.sleep(backoff)

    async def _watch(self, consumer: InboxConsumer, task: asyncio.Task[None]) -> str | None:
        self._restart.clear()
        while not task.done():
            if await wait_event(self._restart, 1.0):
                return "broker epoch changed"
            since = consumer.unassigned_since
            if since is not None and time.monotonic() - since > self.unassigned_grace:
                return "unassigned for too long"
        return None
