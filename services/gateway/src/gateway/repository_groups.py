"""The gateway's own record of the messages staff sent to a group from the pages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.servicekit.db import Connection


async def add_group_message(
    conn: Connection, *, message_id: uuid.UUID, group_id: uuid.UUID, staff_id: uuid.UUID,
    subject: str, recipients: int, sent_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO group_messages (message_id, group_id, staff_id, subject, recipients,"
        " sent_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_id) DO NOTHING",
        message_id, group_id, staff_id, subject, recipients, sent_at)


async def group_messages(conn: Connection, group_id: uuid.UUID, staff_id: uuid.UUID | None,
                         limit: int) -> list[Any]:
    """The newest messages sent to the group: by ``staff_id`` only, unless it is None."""
    return list(await conn.fetch(
        "SELECT message_id, group_id, staff_id, subject, recipients, sent_at"
        " FROM group_messages WHERE group_id = $1 AND ($2::uuid IS NULL OR staff_id = $2)"
        " ORDER BY sent_at DESC LIMIT $3", group_id, staff_id, limit))


async def group_message(conn: Connection, message_id: uuid.UUID) -> Any:
    return await conn.fetchrow(
        "SELECT message_id, group_id, staff_id, subject, recipients, sent_at"
        " FROM group_messages WHERE message_id = $1", message_id)
