"""A run killed half-way is redone or resumed at the next start: no event lost or doubled."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from sync_iwds import service
from sync_iwds.deps import Deps
from tests.integration.sync_iwds.conftest import events, person, write_csv
from tests.support.kit import wait_until


async def test_killed_while_applying_is_applied_once_at_next_start(
        iwds_pool: asyncpg.Pool, deps: Deps, tmp_path: Path, database: str) -> None:
    iwds_dsn = database
    path = write_csv(tmp_path / "a.csv", [person(f"P{i}") for i in range(300)])
    run = service.open_run(iwds_pool, deps, feed="participants", mode="full",
                                 source="cli", file_path=str(path))
    assert await service.stage(iwds_pool, deps, run, service.file_chunks(path)) is None

    blocker = await asyncpg.connect(iwds_dsn)
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE outbox IN EXCLUSIVE MODE")  # apply stops at events
        applying = asyncio.create_task(service.apply_run(iwds_pool, deps, run.id))

        async def waiting() -> bool:
            return bool(await iwds_pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE 'INSERT INTO outbox%'"))
        await wait_until(waiting, timeout=20)
        await iwds_pool.execute(  # the process dies: its transaction is rolled back
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO outbox%'")
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
            await applying
    finally:
        await blocker.close()
    assert await iwds_pool.fetchval("SELECT count(*) FROM iwds_people") == 0
    assert await events(iwds_pool) == []

    [recovered] = await service.recover(iwds_pool, deps)
    assert recovered.status == "done" and recovered.counts.added == 300
    assert len(await events(iwds_pool, "IwdsRecordUpdated")) == 300
    assert len(await events(iwds_pool, "IwdsSyncCompleted")) == 1
    assert await service.recover(iwds_pool, deps) == []  # nothing left to do
    again = await service.apply_run(iwds_pool, deps, run.id)
    assert again.status == "done" and len(await events(iwds_pool)) == 301


async def test_killed_while_reading_is_read_again_from_its_file(
        iwds_pool: asyncpg.Pool, deps: Deps, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [person(f"P{i}") for i in range(500)])
    run = service.open_run(iwds_pool, deps, feed="participants", mode="full",
                                 source="cli", file_path=str(path))
    staging = service.Staging(iwds_pool, deps, run)
    await staging.__aenter__()
    data = path.read_bytes()
    await staging.feed(data[: len(data) // 2])
    await staging.feed(b"")  # half the rows are in staging (batches of 100)
    await staging._wait_copy()
    assert await iwds_pool.fetchval("SELECT count(*) FROM iwds_stage_people") > 0
    # the reading process dies: its connection (and the run's lock) goes away
    await iwds_pool.execute("SELECT pg_terminate_backend($1)", staging._conn.get_server_pid())
    other = await service.recover(iwds_pool, deps)
    assert [r.status for r in other] == ["done"]
    assert other[0].counts.added == 500 and other[0].counts.read == 500
    assert len(await events(iwds_pool, "IwdsRecordUpdated")) == 500
    assert await iwds_pool.fetchval("SELECT count(*) FROM iwds_stage_people") == 0


async def test_killed_while_reading_a_body_that_is_gone_is_refused(
        iwds_pool: asyncpg.Pool, deps: Deps) -> None:
    run = service.open_run(iwds_pool, deps, feed="participants", mode="partial",
                           source="http")
    async with iwds_pool.acquire() as conn:  # its process died before it read a byte
        await service.repo.insert_run(conn, run)
    [refused] = await service.recover(iwds_pool, deps)
    assert refused.id == run.id and refused.status == "refused"
    assert "send it again" in (refused.message or "")
    assert await events(iwds_pool) == []


async def test_a_live_run_is_left_alone(iwds_pool: asyncpg.Pool, deps: Deps,
                                        tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [person("P1")])
    run = service.open_run(iwds_pool, deps, feed="participants", mode="full",
                                 source="cli", file_path=str(path))
    async with service.Staging(iwds_pool, deps, run):
        assert await service.recover(iwds_pool, deps) == []
    assert (await service.get_run(iwds_pool, run.id)).status == "running"
