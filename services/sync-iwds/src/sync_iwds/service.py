"""Use cases of sync-iwds: one pipeline for a file, an HTTP body and the raw topic.

A run is read into staging first (COPY in batches, on a connection holding the
run's advisory lock, which says "this run's process is alive"), then applied in
ONE transaction: the diff in SQL, the new state, every event (outbox COPY) and
the run's status commit together. A run killed while applying left nothing; one
killed after staging is applied at the next start; one killed while reading is
read again from its file (CLI) or refused (a body that is gone). Applying checks
the run's status under a row lock, so applying twice does nothing the second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterable, Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from shared.schemas.iwds import (
    IwdsAccessGrant,
    IwdsRecordRemoved,
    IwdsRecordUpdated,
    IwdsRunCounts,
    IwdsStaffAccessUpdated,
    IwdsSyncCompleted,
)
from shared.servicekit.audit import Actor, record
from shared.servicekit.db import Connection
from shared.servicekit.errors import Conflict, NotFound
from shared.servicekit.logs import causation_id, correlation_id
from sync_iwds import repository as repo
from sync_iwds.deps import Deps, IdentityUnavailable
from sync_iwds.domain import (
    BadFile,
    Counts,
    Decoder,
    Feed,
    Mode,
    Parsed,
    Parser,
    Rejection,
    should_hold,
)
from sync_iwds.repository import Run

log = structlog.get_logger(__name__)
READ_CHUNK = 1 << 20


def _kind(mode: Mode, source: str) -> str:
    if mode == "full":
        return "nightly"
    return "manual" if source == "cli" else "stream"


class Staging:
    """Reads one run into staging. Use as ``async with``; feed bytes, then ``finish``."""

    def __init__(self, pool: asyncpg.Pool, deps: Deps, run: Run) -> None:
        self.pool, self.deps, self.run = pool, deps, run
        self.parser = Parser(run.feed)
        self.decoder = Decoder()
        self._rows: list[tuple[Any, ...]] = []
        self._rejected: list[Rejection] = []
        self._conn: Any = None
        self._copy: asyncio.Task[None] | None = None
        self.staged = 0

    async def __aenter__(self) -> Staging:
        self._conn = await self.pool.acquire()
        if not await repo.try_lock_run(self._conn, self.run.id):
            await self.pool.release(self._conn)
            raise Conflict("run", "is being read by another process", code="run-busy")
        # the row appears only once its lock is held: recovery never takes a run
        # being opened for a dead one
        await repo.insert_run(self._conn, self.run)
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._copy is not None:
                self._copy.cancel()
                await asyncio.gather(self._copy, return_exceptions=True)
            await repo.unlock_run(self._conn, self.run.id)
        finally:
            await self.pool.release(self._conn)

    async def feed(self, chunk: bytes) -> None:
        self._take(self.parser.lines(self.decoder.feed(chunk)))
        if len(self._rows) >= self.deps.settings.stage_batch_rows:
            await self._flush()

    def _take(self, parsed: Iterable[Parsed]) -> None:
        run_id = self.run.id
        for p in parsed:
            if isinstance(p, Rejection):
                self._rejected.append(p)
            else:
                self._rows.append((run_id, *p))

    async def _flush(self) -> None:
        """COPY the rows read so far while the next ones are parsed (PostgreSQL and
        Python work at the same time); at most one COPY is in flight."""
        await self._wait_copy()
        rows, rejected = self._rows, self._rejected
        self._rows, self._rejected = [], []
        self.staged += len(rows)
        self._copy = asyncio.create_task(self._copy_batch(rows, rejected))

    async def _copy_batch(self, rows: list[tuple[Any, ...]], rejected: list[Rejection]) -> None:
        if rows:
            await repo.copy_stage(self._conn, self.run.feed, rows)
        if rejected:
            await repo.copy_rejected(self._conn, self.run.id, rejected)

    async def _wait_copy(self) -> None:
        if self._copy is not None:
            task, self._copy = self._copy, None
            await task

    async def finish(self) -> Counts:
        self._take(self.parser.lines(self.decoder.end()))
        last = self.parser.finish()
        if last is not None:
            self._take([last])
        await self._flush()
        await self._wait_copy()
        counts = Counts(read=self.parser.read, rejected=self.parser.rejected)
        await repo.analyze_stage(self._conn, self.run.feed)
        await repo.set_staged(self._conn, self.run.id, self.staged, counts)
        if self.parser.dropped_columns:
            # names only, never values: an ssn column's content goes nowhere
            log.info("iwds_columns_ignored", run_id=str(self.run.id),
                     columns=self.parser.dropped_columns)
        return counts


def open_run(pool: asyncpg.Pool | None, deps: Deps, *, feed: Feed, mode: Mode, source: str,
                   file_path: str | None = None) -> Run:
    """A new run; its row is written when staging starts (under the run's lock)."""
    return Run(uuid.uuid4(), feed, mode, _kind(mode, source), source, "running", "reading",
               file_path, 0, Counts(), None, deps.clock.now(), None)


async def refuse(pool: asyncpg.Pool, deps: Deps, run: Run, message: str,
                 counts: Counts | None = None) -> Run:
    async with pool.acquire() as conn, conn.transaction():
        await repo.finish_run(conn, run.id, status="refused", counts=counts or Counts(),
                              message=message, at=deps.clock.now())
        await repo.clear_stage(conn, run.feed, run.id)
        got = await repo.get_run(conn, run.id)
    assert got is not None
    log.info("iwds_run_refused", run_id=str(run.id), feed=run.feed, message=message)
    return got


async def stage(pool: asyncpg.Pool, deps: Deps, run: Run, chunks: AsyncIterable[bytes],
                progress: Callable[[int], None] | None = None) -> Run | None:
    """Read ``chunks`` into staging. The refused run when the file is bad, else None."""
    try:
        async with Staging(pool, deps, run) as st:
            async for chunk in chunks:
                await st.feed(chunk)
                if progress is not None:
                    progress(len(chunk))
            await st.finish()
    except BadFile as exc:
        return await refuse(pool, deps, run, str(exc))
    except Exception as exc:  # the body stopped (client gone...): nothing applied
        await refuse(pool, deps, run, f"reading stopped ({type(exc).__name__}); send it again")
        raise
    return None


async def file_chunks(path: Path) -> AsyncIterable[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(READ_CHUNK):
            yield chunk


async def import_file(pool: asyncpg.Pool, deps: Deps, *, feed: Feed, mode: Mode, path: Path,
                      progress: Callable[[int], None] | None = None) -> Run:
    """The CLI's import: read, stage, apply; the finished (or held, refused) run."""
    run = open_run(pool, deps, feed=feed, mode=mode, source="cli",
                         file_path=os.path.abspath(path))  # noqa: ASYNC240
    refused = await stage(pool, deps, run, file_chunks(path), progress)
    if refused is not None:
        return refused
    return await apply_run(pool, deps, run.id)


# -- applying ----------------------------------------------------------------------------


async def apply_run(pool: asyncpg.Pool, deps: Deps, run_id: uuid.UUID, *,
                    force: bool = False) -> Run:
    """Apply a staged run (or, with ``force``, a held one) in one transaction."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            run = await apply_in(conn, deps, run_id, force=force)
        if run.status != "held" and run.phase != "reading":
            await repo.clear_stage(conn, run.feed, run.id)
    return run


async def apply_in(conn: Connection, deps: Deps, run_id: uuid.UUID, *,
                   force: bool = False) -> Run:
    """The apply, inside the caller's transaction (the raw-topic handler's inbox one)."""
    found = await repo.get_run(conn, run_id)
    if found is None:
        raise NotFound(f"no run {run_id}")
    await repo.lock_feed(conn, found.feed)
    run = await repo.get_run(conn, run_id, for_update=True)
    assert run is not None
    if run.phase != "staged" or run.status not in ("running", "held"):
        return run  # applied, refused or discarded already: nothing to do
    if run.status == "held" and not force:
        return run
    staged = await repo.count_staged(conn, run.feed, run.id)
    if staged != run.staged_rows:
        await repo.finish_run(conn, run.id, status="refused", counts=run.counts,
                              message="staged rows were lost (database restart); "
                                      "send the file again", at=deps.clock.now())
        return await _reload(conn, run.id)
    if run.feed == "participants":
        counts, held = await _apply_people(conn, deps, run, force=force)
    else:
        counts, held = await _apply_staff(conn, deps, run, force=force)
    now = deps.clock.now()
    if held:
        share = deps.settings.hold_share
        await repo.finish_run(
            conn, run.id, status="held", counts=counts, at=None,
            message=f"would remove {counts.removed} records, more than {share:.1%} of those "
                    "held: confirm or discard")
        log.info("iwds_run_held", run_id=str(run.id), feed=run.feed, removed=counts.removed)
        return await _reload(conn, run.id)
    await repo.finish_run(conn, run.id, status="done", counts=counts, message=None, at=now,
                          phase="applied")
    await deps.outbox.add(conn, IwdsSyncCompleted(
        run_id=run.id, kind=run.kind, started_at=run.started_at,
        finished_at=now, counts=IwdsRunCounts(**counts.as_dict())))
    log.info("iwds_run_done", run_id=str(run.id), feed=run.feed, **counts.as_dict())
    return await _reload(conn, run.id)


async def _reload(conn: Connection, run_id: uuid.UUID) -> Run:
    run = await repo.get_run(conn, run_id)
    assert run is not None
    return run


async def _apply_people(conn: Connection, deps: Deps, run: Run, *, force: bool
                        ) -> tuple[Counts, bool]:
    full = run.mode == "full"
    k = await repo.diff_people(conn, run.id, full=full)
    counts = Counts(read=run.counts.read, rejected=run.counts.rejected, added=k.get("a", 0),
                    changed=k.get("c", 0), unchanged=k.get("u", 0) + k.get("s", 0),
                    removed=k.get("r", 0))
    if full and not force and should_hold(
            counts.removed, await repo.count_people(conn), deps.settings.hold_share):
        return counts, True
    await repo.apply_people(conn, run.id)
    if full and counts.removed:
        await repo.add_removed_events(conn, _meta(deps, IwdsRecordRemoved))
        await repo.remove_gone(conn)
    if counts.added or counts.changed:
        await repo.add_updated_events(conn, _meta(deps, IwdsRecordUpdated))
    counts.unlinked = await repo.count_unlinked(conn, run.id)
    return counts, False


def _meta(deps: Deps, event: type[Any]) -> repo.EnvelopeMeta:
    return repo.EnvelopeMeta(event.TOPIC, event.TYPE, deps.clock.now(), deps.outbox.producer,
                             correlation_id.get(), causation_id.get())


def _updated(r: Any) -> IwdsRecordUpdated:
    return IwdsRecordUpdated(
        iwds_person_id=r["iwds_person_id"], account_id=r["account_id"],
        lwia_code=r["lwia_code"], office_code=r["office_code"],
        case_manager_staff_id=r["case_manager_staff_id"], program=r["program"],
        status=r["status"], exit_date=r["exit_date"])


async def _apply_staff(conn: Connection, deps: Deps, run: Run, *, force: bool
                       ) -> tuple[Counts, bool]:
    full = run.mode == "full"
    k = await repo.diff_staff(conn, run.id, full=full)
    counts = Counts(read=run.counts.read, rejected=run.counts.rejected, added=k.get("a", 0),
                    changed=k.get("c", 0), unchanged=k.get("u", 0), removed=k.get("r", 0))
    if full and not force and should_hold(
            counts.removed, await repo.count_staff_with_grants(conn), deps.settings.hold_share):
        return counts, True
    await repo.apply_staff(conn)
    events = [IwdsStaffAccessUpdated(
        iwds_staff_id=r["iwds_staff_id"], worknet_username=r["worknet_username"],
        grants=[IwdsAccessGrant(**g) for g in r["grants"]]) for r in await repo.changed_staff(conn)]
    for i in range(0, len(events), deps.settings.event_batch):
        await deps.outbox.add_many(conn, events[i:i + deps.settings.event_batch])
    return counts, False


# -- operators -------------------------------------------------------------------------------


async def confirm(pool: asyncpg.Pool, deps: Deps, run_id: uuid.UUID, actor: Actor) -> Run:
    """Apply a held run as it is."""
    async with pool.acquire() as conn:
        run = await repo.get_run(conn, run_id)
        if run is None:
            raise NotFound(f"no run {run_id}")
        if run.status != "held":
            raise Conflict("status", f"is {run.status}: only a held run can be confirmed",
                           code="run-not-held")
        async with conn.transaction():
            await record(conn, actor, "iwds.run.confirmed", run_id, {"feed": run.feed})
            run = await apply_in(conn, deps, run_id, force=True)
        if run.status == "done":
            await repo.clear_stage(conn, run.feed, run.id)
    return run


async def discard(pool: asyncpg.Pool, deps: Deps, run_id: uuid.UUID, actor: Actor) -> Run:
    async with pool.acquire() as conn:
        async with conn.transaction():
            run = await repo.get_run(conn, run_id, for_update=True)
            if run is None:
                raise NotFound(f"no run {run_id}")
            if run.status != "held":
                raise Conflict("status", f"is {run.status}: only a held run can be discarded",
                               code="run-not-held")
            await repo.finish_run(conn, run_id, status="discarded", counts=run.counts,
                                  message="discarded by an operator", at=deps.clock.now())
            await record(conn, actor, "iwds.run.discarded", run_id, {"feed": run.feed})
        await repo.clear_stage(conn, run.feed, run_id)
        return await _reload(conn, run_id)


async def recover(pool: asyncpg.Pool, deps: Deps) -> list[Run]:
    """At start: runs whose process died. Staged ones are applied, ones read from a file
    still there are read again, the rest are refused (nothing of them was applied)."""
    done: list[Run] = []
    for run_id in await _orphans(pool):
        async with pool.acquire() as conn:
            if not await repo.try_lock_run(conn, run_id):
                continue  # its process is alive
            run = await repo.get_run(conn, run_id)
            await repo.unlock_run(conn, run_id)
        if run is None or run.status != "running":
            continue
        log.info("iwds_run_recovering", run_id=str(run_id), phase=run.phase)
        if run.phase == "staged":
            done.append(await apply_run(pool, deps, run_id))
        elif run.file_path and os.path.isfile(run.file_path):  # noqa: ASYNC240
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("DELETE FROM iwds_stage_people WHERE run_id = $1", run_id)
                await conn.execute("DELETE FROM iwds_stage_grants WHERE run_id = $1", run_id)
                await repo.delete_rejected(conn, run_id)
            refused = await stage(pool, deps, run, file_chunks(Path(run.file_path)))
            done.append(refused or await apply_run(pool, deps, run_id))
        else:
            done.append(await refuse(
                pool, deps, run, "interrupted before the whole input was read; "
                "nothing was applied: send it again"))
    return done


async def _orphans(pool: asyncpg.Pool) -> list[uuid.UUID]:
    async with pool.acquire() as conn:
        return await repo.orphan_candidates(conn)


async def staged_runs(pool: asyncpg.Pool) -> list[uuid.UUID]:
    """Runs staged over HTTP, waiting for the applier (a CLI run applies its own;
    one whose process died is found by ``recover``)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id FROM iwds_runs WHERE status = 'running' AND phase = 'staged'"
            " AND source = 'http' ORDER BY started_at")
    return [r["id"] for r in rows]


# -- records from the raw topic ----------------------------------------------------------------


async def apply_records(conn: Connection, deps: Deps, *, feed: Feed, records: list[dict[str, Any]]
                        ) -> Run:
    """A partial run of a few records, entirely inside the caller's transaction."""
    run = Run(uuid.uuid4(), feed, "partial", "stream", "topic", "running", "reading", None, 0,
              Counts(), None, deps.clock.now(), None)
    await repo.insert_run(conn, run)
    parser = Parser(feed)
    rows: list[tuple[Any, ...]] = []
    rejected: list[Rejection] = []
    for i, obj in enumerate(records, start=1):
        p = parser.record(obj, i) if isinstance(obj, dict) else Rejection(i, "", "not an object")
        if isinstance(p, Rejection):
            rejected.append(p)
        else:
            rows.append((run.id, *p.as_copy_row()))
    if rows:
        await repo.copy_stage(conn, feed, rows)
    if rejected:
        await repo.copy_rejected(conn, run.id, rejected)
    await repo.set_staged(conn, run.id, len(rows), Counts(
        read=len(records), rejected=len(rejected)))
    result = await apply_in(conn, deps, run.id)
    table = "iwds_stage_people" if feed == "participants" else "iwds_stage_grants"
    await conn.execute(f"DELETE FROM {table} WHERE run_id = $1", run.id)  # noqa: S608
    return result


# -- reading runs --------------------------------------------------------------------------


async def get_run(pool: asyncpg.Pool, run_id: uuid.UUID) -> Run:
    async with pool.acquire() as conn:
        run = await repo.get_run(conn, run_id)
    if run is None:
        raise NotFound(f"no run {run_id}")
    return run


async def list_runs(pool: asyncpg.Pool, *, limit: int, after: Any) -> list[Run]:
    async with pool.acquire() as conn:
        return await repo.list_runs(conn, limit=limit, after=after)


@contextlib.asynccontextmanager
async def rejected_rows(pool: asyncpg.Pool, run_id: uuid.UUID) -> Any:
    async with pool.acquire() as conn, conn.transaction():
        if await repo.get_run(conn, run_id) is None:
            raise NotFound(f"no run {run_id}")
        yield repo.rejected_rows(conn, run_id)


# -- linking ---------------------------------------------------------------------------------


async def link_by_hand(pool: asyncpg.Pool, deps: Deps, person_id: str,
                       account_id: uuid.UUID | None, actor: Actor) -> IwdsRecordUpdated:
    """An admin links a record to a workNet account (or unlinks it with None)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await repo.person_for_update(conn, person_id)
        if row is None:
            raise NotFound(f"no IWDS record {person_id}")
        await repo.set_link(conn, person_id, account_id, "admin")
        await record(conn, actor, "iwds.record.linked", account_id,
                     {"iwds_person_id": person_id})
        row = await repo.person_for_update(conn, person_id)
        event = _updated(row)
        await deps.outbox.add(conn, event)
    return event


async def link_matched(pool: asyncpg.Pool, deps: Deps, person_id: str,
                       account_id: uuid.UUID) -> bool:
    """The matcher found exactly one strong candidate: link, unless linked meanwhile."""
    async with pool.acquire() as conn, conn.transaction():
        row = await repo.person_for_update(conn, person_id)
        if row is None or row["worknet_account_id"] or row["linked_account_id"]:
            return False
        await repo.set_link(conn, person_id, account_id, "matcher")
        row = await repo.person_for_update(conn, person_id)
        await deps.outbox.add(conn, _updated(row))
    return True


async def link_once(pool: asyncpg.Pool, deps: Deps) -> tuple[int, int]:
    """One batch of unlinked records through identity's matcher: (asked, linked).
    Raises IdentityUnavailable when identity cannot be asked (tried again later)."""
    assert deps.identity is not None
    s = deps.settings
    now = deps.clock.now()
    async with pool.acquire() as conn:
        batch = await repo.unlinked_batch(conn, s.link_batch,
                                          now - timedelta(hours=s.link_retry_hours))
    linked = 0
    tried: list[str] = []
    try:
        for r in batch:
            account = await deps.identity.strong_match(
                r["first_name"], r["last_name"], r["date_of_birth"])
            tried.append(r["iwds_person_id"])
            if account is not None and await link_matched(
                    pool, deps, r["iwds_person_id"], account):
                linked += 1
    finally:
        if tried:
            async with pool.acquire() as conn:
                await repo.mark_link_tried(conn, tried, now)
    return len(batch), linked


async def link_forever(pool: asyncpg.Pool, deps: Deps) -> None:
    while True:
        try:
            asked, linked = await link_once(pool, deps)
            if linked:
                log.info("iwds_records_linked", asked=asked, linked=linked)
            if asked:
                continue
        except IdentityUnavailable as exc:
            log.info("iwds_linking_paused", reason=str(exc))
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("iwds_linking_failed", error=type(exc).__name__)
        await asyncio.sleep(deps.settings.link_interval_seconds)
