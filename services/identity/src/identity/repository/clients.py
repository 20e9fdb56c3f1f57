"""SQL of OAuth2 clients (machines' credentials)."""

from __future__ import annotations

import uuid

import asyncpg

from shared.servicekit.db import Connection


async def insert_client(conn: Connection, client_id: uuid.UUID, name: str,
                        secret_hash: bytes, scopes: list[str]) -> bool:
    """False when the name is taken."""
    try:
        await conn.execute(
            "INSERT INTO oauth_clients (id, name, secret_hash, scopes) VALUES ($1, $2, $3, $4)",
            client_id, name, secret_hash, scopes)
    except asyncpg.UniqueViolationError:
        return False
    return True


async def active_client(conn: Connection, client_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, secret_hash, scopes FROM oauth_clients WHERE id = $1 AND disabled_at IS NULL",
        client_id)
