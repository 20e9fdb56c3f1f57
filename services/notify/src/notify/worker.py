"""The delivery worker: claims due emails (FOR UPDATE SKIP LOCKED, with a lease), sends
them through the SMTP pool, writes what the server answered. Rows left 'sending' by a
worker that died come back when their lease runs out."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid

import asyncpg
import structlog

from notify import service
from notify.deps import Deps
from notify.mail import SendResult
from shared.servicekit.db import transaction

log = structlog.get_logger(__name__)


class DeliveryWorker:
    def __init__(self, pool: asyncpg.Pool, deps: Deps, *, owner: str | None = None) -> None:
        self.pool, self.deps = pool, deps
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        s = deps.settings
        limit = s.worker_batch_size
        if s.smtp_rate_per_second > 0:  # a batch must be sent well within its lease
            limit = min(limit, max(1, int(s.smtp_rate_per_second * s.worker_lease_seconds / 2)))
        self.limit = limit
        self.sent = 0
        # rendered messages waiting for a connection are bounded (memory; and the first
        # emails leave while later ones are still being rendered)
        self._gate = asyncio.Semaphore(2 * s.smtp_pool_size)

    async def _send(self, job: service.Job) -> tuple[service.Job, SendResult]:
        async with self._gate:
            return await self._render_and_send(job)

    async def _render_and_send(self, job: service.Job) -> tuple[service.Job, SendResult]:
        d, s = self.deps, self.deps.settings
        try:
            data = d.renderer.render(
                job.message, delivery_id=job.claimed.id, to=job.claimed.address,
                name=job.claimed.name, now=d.clock.now())
        except Exception as exc:  # a template that cannot render never will: no retry
            log.error("render_failed", delivery_id=job.claimed.id, error=type(exc).__name__)
            return job, SendResult("permanent", f"could not render: {type(exc).__name__}")
        return job, await d.smtp.send(s.mail_from, job.claimed.address, data)

    async def _flush(self, done: list[tuple[service.Job, SendResult]]) -> None:
        if done:
            async with transaction(self.pool) as conn:
                await service.record_outcomes(conn, self.deps, self.owner, done)
            self.sent += sum(1 for _, r in done if r.outcome == "sent")

    async def run_once(self) -> int:
        """Claim one batch and send it; returns how many were claimed."""
        started = time.monotonic()
        async with transaction(self.pool) as conn:
            jobs = await service.claim(conn, self.deps, self.owner, self.limit)
        if not jobs:
            return 0
        claimed = time.monotonic()
        flushing = 0.0
        tasks = [asyncio.create_task(self._send(j)) for j in jobs]
        written: set[int] = set()

        async def write(results: list[tuple[service.Job, SendResult]]) -> None:
            await self._flush(results)
            written.update(job.claimed.id for job, _ in results)

        unwritten: list[tuple[service.Job, SendResult]] = []
        try:
            for next_done in asyncio.as_completed(tasks):
                unwritten.append(await next_done)
                if len(unwritten) >= self.deps.settings.worker_flush_size:
                    began = time.monotonic()
                    await write(unwritten)
                    unwritten = []
                    flushing += time.monotonic() - began
            began = time.monotonic()
            await write(unwritten)
            flushing += time.monotonic() - began
        except asyncio.CancelledError:
            # stopping: write what the server already answered, so that the next worker
            # does not send it again (a hard kill cannot; those few go once more). The
            # sends still running are stopped first: none may finish unrecorded.
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            answered = [t.result() for t in tasks
                        if t.done() and not t.cancelled() and t.exception() is None]
            left = [r for r in answered if r[0].claimed.id not in written]
            if left:
                try:
                    await self._flush(left)
                except Exception as exc:
                    log.warning("delivery_results_lost", emails=len(left),
                                error=type(exc).__name__)
            raise
        finally:
            for t in tasks:
                t.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks, return_exceptions=True)
        log.info("delivery_batch", emails=len(jobs), claim_s=round(claimed - started, 3),
                 total_s=round(time.monotonic() - started, 3), writing_s=round(flushing, 3))
        return len(jobs)

    async def run(self) -> None:
        """Two claim-and-send loops: the next batch is claimed while the last emails of
        the previous one are still out (SKIP LOCKED keeps them apart)."""
        await asyncio.gather(self._loop(), self._loop())

    async def _loop(self) -> None:
        s = self.deps.settings
        pause = s.worker_poll_interval
        while True:
            try:
                n = await self.run_once()
                pause = s.worker_poll_interval
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("delivery_worker_failed", error=type(exc).__name__, retry_in=pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)
                continue
            except Exception as exc:  # a bug must not stop every email for good
                log.exception("delivery_worker_error", error=type(exc).__name__,
                              retry_in=pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)
                continue
            if n == 0:
                await asyncio.sleep(s.worker_poll_interval)
