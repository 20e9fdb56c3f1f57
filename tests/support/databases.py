"""Databases for tests on the session's PostgreSQL: made with the kit's tables, dropped
with any connection still open."""

from __future__ import annotations

import uuid

import asyncpg

from shared.servicekit.db import KIT_MIGRATIONS, migrate
from tests.support.stack import Servers


async def fresh_database(servers: Servers, prefix: str = "t_") -> str:
    """A new database with the kit's tables; its name."""
    name = f"{prefix}{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(servers.pg_dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(servers.pg_dsn(name))
    try:
        await migrate(conn, [("kit", KIT_MIGRATIONS)])
    finally:
        await conn.close()
    return name


async def drop_database(servers: Servers, name: str) -> None:
    admin = await asyncpg.connect(servers.pg_dsn("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
