"""asyncpg pool and the migration runner.

Migrations are numbered plain-SQL files (``0001_what.sql``). Each applied file
is recorded with its checksum under a namespace (the kit's own tables, then the
service's). A file edited after it was applied stops the service; an advisory
lock keeps two instances from migrating at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared.servicekit.errors import DatabaseBusy

# What use cases, repositories and handlers take: a connection, or one borrowed from a pool.
Connection = asyncpg.Connection | PoolConnectionProxy

KIT_MIGRATIONS = Path(__file__).parent / "migrations"
_FILE = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")  # fullmatch
_LOCK_KEY = 0x43534D49  # "CSMI": one advisory lock per database


class MigrationError(RuntimeError):
    """A migration cannot be applied, or an applied one was changed."""


@dataclass(frozen=True)
class Migration:
    namespace: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(namespace: str, directory: Path) -> list[Migration]:
    if not directory.is_dir():
        raise MigrationError(f"{directory}: no such migrations directory")
    found: list[Migration] = []
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() != ".sql":
            continue  # a README beside the migrations is fine
        match = _FILE.fullmatch(path.name)
        if not match or not path.is_file():
            raise MigrationError(f"{path}: migration files are named NNNN_what.sql")
        found.append(Migration(namespace, int(match[1]), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{directory}: two migrations share a number")
    return found


async def migrate(conn: asyncpg.Connection, sets: list[tuple[str, Path]]) -> list[str]:
    """Apply every pending migration of each (namespace, directory); return their names.

    Each file runs in its own transaction with its record in schema_migrations:
    a failing file leaves nothing behind, and the files before it stay applied.
    """
    plan = [m for namespace, directory in sets for m in load_migrations(namespace, directory)]
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   namespace  text NOT NULL,
                   version    integer NOT NULL,
                   name       text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (namespace, version))"""
        )
        rows = await conn.fetch("SELECT namespace, version, name, checksum FROM schema_migrations")
        done = {(r["namespace"], r["version"]): r for r in rows}
        # Every applied file is checked before anything new runs.
        for m in plan:
            previous = done.get((m.namespace, m.version))
            if previous is not None and previous["checksum"] != m.checksum:
                raise MigrationError(
                    f"migration {m.namespace}/{m.name} was edited after it was applied "
                    "(add a new migration instead)"
                )
        for m in plan:
            if (m.namespace, m.version) in done:
                continue
            try:
                async with conn.transaction():
                    await conn.execute(m.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (namespace, version, name, checksum)"
                        " VALUES ($1, $2, $3, $4)",
                        m.namespace, m.version, m.name, m.checksum,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(
                    f"migration {m.namespace}/{m.name} failed: {type(exc).__name__}: {exc}"
                ) from exc
            applied_now.append(f"{m.namespace}/{m.name}")
    finally:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(
            typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


# The services run small indexed queries. A plan the planner costs high (an array
# overlap it cannot estimate, say) must not start parallel workers or JIT-compile:
# either costs more than the query itself. Sent at connection start, no round trip.
OLTP_SETTINGS = {"max_parallel_workers_per_gather": "0", "jit": "off"}


class _AcquireWithin:
    """``pool.acquire()`` bounded by the pool's wait: DatabaseBusy when it runs out."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __aenter__(self) -> Connection:
        try:
            conn: Connection = await self.inner.__aenter__()
        except TimeoutError:
            raise DatabaseBusy("no database connection came free in time") from None
        return conn

    async def __aexit__(self, *exc: object) -> None:
        await self.inner.__aexit__(*exc)

    def __await__(self) -> Generator[Any, None, Connection]:
        return self.__aenter__().__await__()


class WaitBoundedPool(asyncpg.Pool):
    """A pool whose ``acquire()`` waits at most ``acquire_timeout`` seconds by default,
    then raises DatabaseBusy (answered 503): a request finds out instead of hanging
    when every connection is taken."""

    acquire_timeout: float | None = None

    def acquire(self, *, timeout: float | None = None) -> Any:
        return _AcquireWithin(super().acquire(
            timeout=self.acquire_timeout if timeout is None else timeout))


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10,
                      acquire_timeout: float | None = None) -> asyncpg.Pool:
    """``acquire_timeout``: how long ``acquire()`` waits for a free connection before
    DatabaseBusy (None: no limit)."""
    if acquire_timeout is None:
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, init=_init_connection,
            command_timeout=60, server_settings=OLTP_SETTINGS,
        )
    else:
        bounded = WaitBoundedPool(
            dsn, min_size=min_size, max_size=max_size, init=_init_connection,
            command_timeout=60, server_settings=OLTP_SETTINGS,
            connection_class=asyncpg.Connection, record_class=asyncpg.Record,
            max_queries=50000, max_inactive_connection_lifetime=300.0, loop=None,
        )
        bounded.acquire_timeout = acquire_timeout
        pool = await bounded
    assert pool is not None
    return pool


async def ensure_database(admin_dsn: str, name: str) -> bool:
    """Create database ``name`` if it is missing (dev stack and tests). True if created."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"not a plain database name: {name!r}")
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        await conn.execute(f'CREATE DATABASE "{name}"')
        return True
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[Connection]:
    """A pooled connection inside one transaction, for a route or a CLI command to
    hand to a use case: commits when the block ends, rolls back when it raises."""
    async with pool.acquire() as conn, conn.transaction():
        yield conn
