"""notify in-process on a fresh database and the session's broker, a real SMTP server
(the devstack sink, a plain asyncio SMTP server) on a free port, a pinned clock and
test signing keys.

The app's own delivery worker is off: tests drive workers by hand (``stack.worker()``),
so a deferral, an expired lease or a killed worker is reached by moving the clock,
never by sleeping.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from notify.app import create_app
from notify.deps import Deps
from notify.mail import SmtpPool
from notify.settings import NotifySettings
from notify.worker import DeliveryWorker
from shared.devstack.smtp_sink import FailureRules, MailSink, StoredMessage, list_messages
from shared.schemas.base import Event
from shared.schemas.envelope import Envelope
from shared.schemas.groups import DirectMessageSent
from shared.schemas.identity import CustomerAccountCreated
from shared.servicekit.auth import JwksVerifier
from shared.servicekit.broker import KafkaConfig, new_producer
from shared.servicekit.clock import FixedClock
from shared.servicekit.topics import broker_topic
from tests.support.keys import TestSigner
from tests.support.kit import wait_until
from tests.support.stack import Servers

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Person:
    id: uuid.UUID
    email: str | None
    headers: dict[str, str]


@dataclass
class NotifyStack:
    app: FastAPI
    client: httpx.AsyncClient
    pool: asyncpg.Pool
    sink: MailSink
    mail_dir: Path
    clock: FixedClock
    signer: TestSigner
    producer: AIOKafkaProducer
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    extra_pools: list[SmtpPool] = field(default_factory=list)

    @property
    def deps(self) -> Deps:
        deps: Deps = self.app.state.runtime.deps
        return deps

    def address(self, name: str) -> str:
        """An address unique to this test (other tests' events replay on the broker)."""
        return f"{name}.{self.tag}@example.org"

    def staff(self, *roles: str) -> Person:
        sid = uuid.uuid4()
        return Person(sid, None, bearer(self.signer.token(str(sid), kind="staff",
                                                           roles=list(roles))))

    def customer_token(self, customer_id: uuid.UUID) -> dict[str, str]:
        return bearer(self.signer.token(str(customer_id), kind="customer"))

    async def publish(self, event: Event, *, producer: str = "groups",
                      envelope: Envelope | None = None) -> Envelope:
        env = envelope or Envelope.wrap(event, producer=producer)
        await self.producer.send_and_wait(broker_topic(event.TOPIC), env.to_bytes(),
                                          key=env.subject.encode())
        return env

    async def customer(self, name: str, *, email: bool = True) -> Person:
        """A customer notify has learned from identity's CustomerAccountCreated."""
        cid = uuid.uuid4()
        address = self.address(name) if email else None
        await self.publish(CustomerAccountCreated(
            account_id=cid, username=f"{name}{self.tag}", first_name=name.capitalize(),
            last_name="Tester", email=address, source="staff"), producer="identity")
        await self.wait_for("SELECT true FROM customers WHERE id = $1", cid)
        return Person(cid, address, self.customer_token(cid))

    async def publish_direct(self, to: Person, sender: Person, *, subject: str = "Hello",
                             body: str = "A note from your career planner.") -> uuid.UUID:
        """A direct message, once notify has written its deliveries."""
        event = DirectMessageSent(message_id=uuid.uuid4(), staff_id=sender.id,
                                  customer_id=to.id, subject=subject, body=body)
        await self.publish(event)
        await self.wait_for("SELECT true FROM deliveries WHERE message_id = $1",
                            event.message_id)
        return event.message_id

    async def wait_for(self, sql: str, *args: Any, timeout: float = 30) -> None:
        async def ok() -> bool:
            return bool(await self.pool.fetchval(sql, *args))
        await wait_until(ok, timeout=timeout, interval=0.02)

    async def deliveries(self, message_id: uuid.UUID) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            "SELECT * FROM deliveries WHERE message_id = $1 ORDER BY id", message_id)

    def worker(self, owner: str | None = None, **settings: Any) -> DeliveryWorker:
        """A worker; with ``settings`` (rate, pool size...), on its own SMTP pool."""
        deps = self.deps
        if settings:
            s = deps.settings.model_copy(update=settings)
            deps = replace(deps, settings=s, smtp=SmtpPool(s))
            self.extra_pools.append(deps.smtp)
        return DeliveryWorker(self.pool, deps, owner=owner)

    async def drain(self, worker: DeliveryWorker | None = None, rounds: int = 50) -> int:
        """Run a worker until nothing is due at the current (pinned) time."""
        w = worker or self.worker()
        total = 0
        for _ in range(rounds):
            n = await w.run_once()
            total += n
            if n == 0:
                return total
        raise AssertionError("the worker kept finding work")

    def mail_to(self, address: str) -> list[StoredMessage]:
        return [m for m in list_messages(self.mail_dir) if address in m.rcpt_tos]

    def later(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))


def closed_port() -> int:
    """A local port nothing listens on (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def notify_env(servers: Servers, dsn: str, smtp_port: int) -> dict[str, str]:
    return {
        # groups is not there unless a test serves it (test_group_reach): asking it
        # is refused, which notify must answer 503, never as a yes
        "CSC_GROUPS_URL": f"http://127.0.0.1:{closed_port()}",
        "CSC_ENV": "test",
        "CSC_KAFKA_BOOTSTRAP": servers.bootstrap,
        "CSC_KAFKA_CONSUMER_MODE": "assign",
        "CSC_BROKER_CHECK_INTERVAL": "0.5",
        "NOTIFY_DATABASE_URL": dsn,
        "NOTIFY_OUTBOX_POLL_INTERVAL": "0.2",
        "NOTIFY_SMTP_PORT": str(smtp_port),
        "NOTIFY_SMTP_POOL_SIZE": "4",
        "NOTIFY_WORKER_ENABLED": "false",
        "NOTIFY_CONSUMER_RETRY_BASE_SECONDS": "0.05",
    }


@pytest_asyncio.fixture
async def stack(
    servers: Servers, database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[NotifyStack]:
    mail_dir = tmp_path / "mail"
    sink = MailSink(mail_dir, smtp_port=0, web_port=None, rules=FailureRules())
    await sink.start()
    for k, v in notify_env(servers, database, sink.smtp_port).items():
        monkeypatch.setenv(k, v)
    clock = FixedClock(T0)
    signer = TestSigner()
    verifier = JwksVerifier.from_jwks(signer.jwks(), issuer="csc-identity", audience="notify")
    app = create_app(NotifySettings(), clock=clock, verifier=verifier)
    producer = new_producer(KafkaConfig(bootstrap=servers.bootstrap, client_id="test-pub"))
    await producer.start()
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://notify"
        ) as client:
            pool = app.state.runtime.pool
            st = NotifyStack(app, client, pool, sink, mail_dir, clock, signer, producer)
            try:
                yield st
            finally:
                for p in st.extra_pools:
                    await p.close()
    finally:
        await producer.stop()
        await sink.stop()
