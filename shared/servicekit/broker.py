"""Kafka clients, topic creation and detection of a broker that lost its log.

The broker's *epoch* is the name of a marker topic (``_csc-epoch.<id>``)
created together with every topic the system uses. A broker restarted with
memory storage (Tansu in development) comes back with no topics at all and
its clients do not notice; the watch sees the marker gone, creates every
topic again before any client touches it, and tells its listeners, which
recreate their clients and send again what may not have been consumed. On
Apache Kafka the marker simply stays and the epoch never changes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from shared.servicekit.aio import wait_event
from shared.servicekit.topics import broker_topic

log = structlog.get_logger(__name__)

EPOCH_PREFIX = "_csc-epoch."
EPOCH_HEADER = "csc-epoch"


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap: str
    partitions: int = 4
    replication: int = 1
    client_id: str = "csc"
    fetch_max_wait_ms: int = 100
    request_timeout_ms: int = 10_000
    # zstd: 8 times fewer bytes per envelope than none (39 against 318 in the
    # relay's batches) for the same CPU, measured by bench/compression.py
    compression: str | None = "zstd"


def new_producer(cfg: KafkaConfig) -> AIOKafkaProducer:
    # No idempotent producer: Tansu refuses it, and correctness comes from the
    # outbox and the inbox, not from the broker.
    return AIOKafkaProducer(
        bootstrap_servers=cfg.bootstrap,
        client_id=cfg.client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=2,
        max_batch_size=256 * 1024,
        compression_type=cfg.compression,
        request_timeout_ms=cfg.request_timeout_ms,
        retry_backoff_ms=200,
    )


def new_consumer(cfg: KafkaConfig, *, group_id: str | None) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=cfg.bootstrap,
        client_id=cfg.client_id,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=cfg.fetch_max_wait_ms,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        session_timeout_ms=6_000,
        heartbeat_interval_ms=1_000,
        request_timeout_ms=cfg.request_timeout_ms + 5_000,
        retry_backoff_ms=200,
    )


def new_admin(cfg: KafkaConfig) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=cfg.bootstrap,
        client_id=f"{cfg.client_id}-admin",
        request_timeout_ms=cfg.request_timeout_ms,
    )


def new_epoch() -> str:
    """A sortable, unique epoch name: later epochs sort after earlier ones."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"


def epoch_of(topics: Iterable[str]) -> str | None:
    """The broker's epoch from its topic list: the earliest marker, if any."""
    markers = sorted(t[len(EPOCH_PREFIX):] for t in topics if t.startswith(EPOCH_PREFIX))
    return markers[0] if markers else None


async def create_topics(
    admin: AIOKafkaAdminClient, names: Iterable[str], *, partitions: int, replication: int
) -> list[str]:
    """Create the topics that do not exist yet; return the ones created."""
    existing = set(await admin.list_topics())
    wanted = sorted(set(names) - existing)
    if not wanted:
        return []
    created = []
    for name in wanted:  # one at a time: an "already exists" must not hide the others
        try:
            await admin.create_topics([NewTopic(name, partitions, replication)])
            created.append(name)
        except TopicAlreadyExistsError:
            pass
    return created


Listener = Callable[[str | None, str], Awaitable[None]]


@dataclass
class BrokerWatch:
    """Knows the broker's epoch, and notices when it changes."""

    cfg: KafkaConfig
    topics: list[str]
    interval: float = 1.0
    epoch: str | None = None
    listeners: list[Listener] = field(default_factory=list)
    _admin: AIOKafkaAdminClient | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    reachable: bool = False
    # Epochs that can never be the broker's again: a marker that lost the race to be
    # earliest (two processes found the log empty at once and each made one), or one
    # of a log since lost. Records stamped with one are sent again by their relay.
    dead_epochs: set[str] = field(default_factory=set)

    async def live_epoch(self) -> str | None:
        """The broker's epoch now, asked once (raises when it cannot be reached).

        Only the earliest marker is live, and it stays live until the broker loses its
        log (taking every marker with it); a later marker never becomes the earliest, so
        an epoch that is not live now never will be."""
        async with self._lock:
            try:
                admin = await self._client()
                return epoch_of(await admin.list_topics())
            except (TimeoutError, KafkaError, OSError):
                await self.close()
                raise

    async def settle_epoch(self, seen: str) -> bool:
        """A record or cursor carries epoch ``seen``, not ours: is ``seen`` dead (True:
        never live again, so records stamped with it are stale), or possibly the
        broker's current one that we have not caught up with (False)?"""
        if seen in self.dead_epochs:
            return True
        try:
            live = await self.live_epoch()
        except (TimeoutError, KafkaError, OSError):
            return False
        if live is not None and live != seen:
            self.dead_epochs.add(seen)
            log.warning("broker_epoch_dead", epoch=seen, live=live)
            return True
        return False

    async def _client(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            admin = new_admin(self.cfg)
            await admin.start()
            self._admin = admin
        return self._admin

    async def close(self) -> None:
        if self._admin is not None:
            admin, self._admin = self._admin, None
            await admin.close()

    async def establish(self) -> str:
        """Make sure every topic and an epoch marker exist; return the epoch."""
        async with self._lock:
            return await self._establish()

    async def _establish(self) -> str:
        admin = await self._client()
        topics = await admin.list_topics()
        epoch = epoch_of(topics)
        # Topics first, marker last: a marker promises the topics are there.
        await create_topics(
            admin, [broker_topic(t) for t in self.topics],
            partitions=self.cfg.partitions, replication=self.cfg.replication,
        )
        if epoch is None:
            await create_topics(admin, [EPOCH_PREFIX + new_epoch()], partitions=1, replication=1)
            epoch = epoch_of(await admin.list_topics())
            assert epoch is not None
        self.reachable = True
        return epoch

    async def check(self) -> str | None:
        """Look at the broker once; on a new epoch, tell the listeners. Returns the epoch."""
        async with self._lock:
            try:
                admin = await self._client()
                current = epoch_of(await admin.list_topics())
                if current is None:
                    log.warning("broker_lost_its_log", previous_epoch=self.epoch)
                    current = await self._establish()
                elif self.epoch is None:  # first look: make this process's topics exist
                    await self._establish()
                self.reachable = True
            except (TimeoutError, KafkaError, OSError) as exc:
                self.reachable = False
                log.info("broker_unreachable", error=type(exc).__name__)
                await self.close()  # a fresh client on the next look
                return self.epoch
            previous, changed = self.epoch, current != self.epoch
            self.epoch = current
        if changed:
            log.info("broker_epoch", epoch=current, previous=previous)
            for listener in self.listeners:
                await listener(previous, current)
        return current

    def poke(self) -> None:
        """Ask for a look now (a client saw something odd)."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self.check()
            await wait_event(self._wake, self.interval)
            self._wake.clear()
