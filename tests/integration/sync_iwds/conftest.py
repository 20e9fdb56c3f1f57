"""sync-iwds on a fresh database of the session's PostgreSQL (and broker, where used)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest_asyncio

from shared.schemas.envelope import Envelope
from shared.servicekit.db import KIT_MIGRATIONS, create_pool, migrate
from sync_iwds.app import SPEC
from sync_iwds.deps import Deps, build_deps
from sync_iwds.domain import PARTICIPANT_COLUMNS, STAFF_COLUMNS
from sync_iwds.settings import SyncIwdsSettings


@pytest_asyncio.fixture
async def iwds_pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(database)
    try:
        await migrate(conn, [("kit", KIT_MIGRATIONS), ("sync-iwds", SPEC.migrations)])
    finally:
        await conn.close()
    pool = await create_pool(database, min_size=1, max_size=6)
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def deps(database: str) -> Deps:
    return await build_deps(SyncIwdsSettings(database_url=database, stage_batch_rows=100,
                                             event_batch=100))


def person(pid: str, **over: Any) -> dict[str, Any]:
    row = {"iwds_person_id": pid, "worknet_account_id": "", "lwia_code": "07",
           "office_code": "OF1", "case_manager_staff_id": "S1", "first_name": "Ann",
           "last_name": f"Lee{pid}", "date_of_birth": "1990-04-01", "program": "WIOA",
           "status": "active", "exit_date": "", "updated_at": "2026-11-01T10:00:00+00:00"}
    row.update(over)
    return row


def write_csv(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] | list[str]
              = PARTICIPANT_COLUMNS) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path.write_text(buf.getvalue())
    return path


def write_staff(path: Path, rows: list[tuple[str, str, str, str, str]]) -> Path:
    return write_csv(path, [dict(zip(STAFF_COLUMNS, r, strict=True)) for r in rows],
                     STAFF_COLUMNS)


async def events(pool: asyncpg.Pool, event_type: str | None = None) -> list[dict[str, Any]]:
    """The outbox's events, each parsed back through Envelope and its registered model
    (the bulk events are built in SQL: this keeps them to the contract)."""
    rows = await pool.fetch("SELECT event_type, subject, value FROM outbox ORDER BY id")
    out = []
    for r in rows:
        env = Envelope.from_bytes(r["value"])
        assert env.type == r["event_type"] and env.subject == r["subject"]
        assert env.producer == "sync-iwds"
        event = env.parse_payload()
        assert event.subject_key() == env.subject
        if event_type is None or r["event_type"] == event_type:
            out.append({"type": env.type, **event.model_dump(mode="json")})
    return out


async def clear_outbox(pool: asyncpg.Pool) -> None:
    await pool.execute("DELETE FROM outbox")
