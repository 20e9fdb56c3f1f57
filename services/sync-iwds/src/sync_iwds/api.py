"""sync-iwds' HTTP routes: feeds for producers (client credential, scope iwds:feed),
runs and hand linking for admins. Thin: parse, call a use case, shape the answer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict

from shared.servicekit.auth import ClientPrincipal, Principal, require_scope, require_staff
from shared.servicekit.http import PROBLEM_BASE, Problem
from shared.servicekit.paging import BadCursor, decode_cursor, encode_cursor
from shared.servicekit.runtime import Pool, get_deps
from sync_iwds import service
from sync_iwds.deps import Deps
from sync_iwds.repository import Run

router = APIRouter()
FEED_SCOPE = "iwds:feed"
Admin = Annotated[Principal, require_staff("admin")]
Producer = Annotated[ClientPrincipal, require_scope(FEED_SCOPE)]
AppDeps = Annotated[Deps, Depends(get_deps)]
PersonId = Annotated[str, Path(min_length=1, max_length=64)]


class RunCounts(BaseModel):
    read: int
    added: int
    changed: int
    removed: int
    unchanged: int
    rejected: int
    unlinked: int


class RunView(BaseModel):
    id: uuid.UUID
    feed: Literal["participants", "staff-access"]
    mode: Literal["full", "partial"]
    status: Literal["running", "done", "held", "refused", "discarded"]
    counts: RunCounts
    started_at: datetime
    finished_at: datetime | None
    message: str | None = None

    @classmethod
    def of(cls, run: Run) -> RunView:
        return cls(id=run.id, feed=run.feed, mode=run.mode,
                   status=run.status,
                   counts=RunCounts(**run.counts.as_dict()), started_at=run.started_at,
                   finished_at=run.finished_at, message=run.message)


class RunList(BaseModel):
    items: list[RunView]
    next_cursor: str | None


class Accepted(BaseModel):
    run_id: uuid.UUID


@router.post("/v1/feeds/{feed}", status_code=202, tags=["feeds"])
async def post_feed(
    feed: Literal["participants", "staff-access"], request: Request, pool: Pool,
    deps: AppDeps, producer: Producer,
    mode: Annotated[Literal["full", "partial"], Query()] = "full",
) -> Accepted:
    """A feed file as the body (CSV, optionally gzip, or NDJSON), read as it streams in.
    The run is applied in the background: follow it at GET /v1/runs/{run_id}."""
    run = service.open_run(pool, deps, feed=feed, mode=mode, source="http")
    refused = await service.stage(pool, deps, run, request.stream())
    if refused is not None:
        raise Problem(422, "Feed refused", refused.message or "the feed was refused",
                      type_=PROBLEM_BASE + "feed-refused", run_id=str(run.id))
    deps.wake_applier.set()
    return Accepted(run_id=run.id)


def _bad_cursor() -> Problem:
    return Problem(422, "Invalid request", "One or more fields are invalid.",
                   type_=PROBLEM_BASE + "validation",
                   errors=[{"field": "cursor", "reason": "is not a cursor of this list"}])


@router.get("/v1/runs", tags=["runs"])
async def list_runs(
    pool: Pool, admin: Admin,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> RunList:
    """Runs, newest first."""
    after = None
    if cursor:
        try:
            started, rid = decode_cursor(cursor, 2)
            after = (datetime.fromisoformat(str(started)), uuid.UUID(str(rid)))
        except (BadCursor, TypeError, ValueError):
            raise _bad_cursor() from None
    runs = await service.list_runs(pool, limit=limit, after=after)
    nxt = (encode_cursor(runs[-1].started_at.isoformat(), str(runs[-1].id))
           if len(runs) == limit else None)
    return RunList(items=[RunView.of(r) for r in runs], next_cursor=nxt)


@router.get("/v1/runs/{run_id}", tags=["runs"])
async def get_run(run_id: uuid.UUID, pool: Pool, admin: Admin) -> RunView:
    return RunView.of(await service.get_run(pool, run_id))


@router.get("/v1/runs/{run_id}/rejected", tags=["runs"], response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}})
async def rejected(run_id: uuid.UUID, pool: Pool, admin: Admin) -> StreamingResponse:
    """The run's rejected rows as CSV: line, iwds_id, reason (never a row's content)."""
    await service.get_run(pool, run_id)  # 404 before the answer starts

    async def body() -> AsyncIterator[bytes]:
        yield b"line,iwds_id,reason\r\n"
        async with service.rejected_rows(pool, run_id) as rows:
            async for line, iwds_id, reason in rows:
                yield _csv_line(str(line), iwds_id, reason)

    return StreamingResponse(body(), media_type="text/csv")


def _csv_line(*fields: str) -> bytes:
    out = []
    for f in fields:
        if any(ch in f for ch in ',"\r\n') or f[:1] in ("=", "+", "-", "@"):
            f = '"' + f.replace('"', '""') + '"'
        out.append(f)
    return (",".join(out) + "\r\n").encode()


@router.post("/v1/runs/{run_id}/confirm", tags=["runs"])
async def confirm(run_id: uuid.UUID, pool: Pool, deps: AppDeps, admin: Admin) -> RunView:
    """Apply a held run as it is."""
    return RunView.of(await service.confirm(pool, deps, run_id, admin.actor))


@router.post("/v1/runs/{run_id}/discard", tags=["runs"])
async def discard(run_id: uuid.UUID, pool: Pool, deps: AppDeps, admin: Admin) -> RunView:
    """Drop a held run: nothing of it is applied."""
    return RunView.of(await service.discard(pool, deps, run_id, admin.actor))


class AccountLink(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: uuid.UUID | None


class RecordView(BaseModel):
    iwds_person_id: str
    account_id: uuid.UUID | None
    lwia_code: str
    office_code: str | None
    status: str


@router.put("/v1/records/{iwds_person_id}/account", tags=["records"])
async def link_account(iwds_person_id: PersonId, body: AccountLink, pool: Pool, deps: AppDeps,
                       admin: Admin) -> RecordView:
    """Link an IWDS record to a workNet account by hand (null unlinks)."""
    event = await service.link_by_hand(pool, deps, iwds_person_id, body.account_id,
                                       admin.actor)
    return RecordView(iwds_person_id=event.iwds_person_id, account_id=event.account_id,
                      lwia_code=event.lwia_code, office_code=event.office_code,
                      status=event.status)
