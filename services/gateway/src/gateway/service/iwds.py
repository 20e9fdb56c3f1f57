"""IWDS run reports for administrators (sync-iwds' runs API): runs with their counts,
a run's rejected rows, and confirming or discarding a held run."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.deps import Deps
from gateway.domain import PageSession
from gateway.service import Unavailable, _problem, api, send

RUNS_PAGE = 20
REJECTED_SHOWN = 200  # rows shown on the page; the whole list is the CSV download


@dataclass(frozen=True)
class Rejected:
    rows: list[dict[str, str]]  # line, iwds_id, reason
    more: bool  # more rows than shown


async def _rejected_stream(deps: Deps, session: PageSession, run_id: uuid.UUID
                           ) -> httpx.Response:
    return await send(deps, "sync-iwds", "GET", f"/v1/runs/{run_id}/rejected",
                      headers={"Authorization": f"Bearer {session.access_token}"}, stream=True)


async def runs(deps: Deps, session: PageSession, cursor: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": RUNS_PAGE}
    if cursor:
        params["cursor"] = cursor
    found: dict[str, Any] = await api(deps, session, "sync-iwds", "GET", "/v1/runs",
                                      params=params)
    return found


async def held_runs(deps: Deps, session: PageSession) -> list[dict[str, Any]]:
    """Held runs among the newest 100 (a held run waits for an operator: there are few)."""
    found = await api(deps, session, "sync-iwds", "GET", "/v1/runs", params={"limit": 100})
    return [r for r in found["items"] if r["status"] == "held"]


async def run(deps: Deps, session: PageSession, run_id: uuid.UUID) -> dict[str, Any]:
    found: dict[str, Any] = await api(deps, session, "sync-iwds", "GET", f"/v1/runs/{run_id}")
    return found


async def rejected(deps: Deps, session: PageSession, run_id: uuid.UUID) -> Rejected:
    """The first rejected rows of a run (the service answers CSV: line, iwds_id, reason)."""
    rows: list[dict[str, str]] = []
    more = False
    try:
        answer = await _rejected_stream(deps, session, run_id)
    except httpx.TransportError:
        raise Unavailable("sync-iwds") from None
    try:
        if answer.status_code >= 400:
            await answer.aread()
            raise _problem(answer)
        header: list[str] | None = None
        buffer = ""
        async for chunk in answer.aiter_text():
            buffer += chunk
            *lines, buffer = buffer.split("\r\n")
            for line in lines:
                fields = next(csv.reader(io.StringIO(line)), [])
                if header is None:
                    header = fields
                    continue
                if len(rows) >= REJECTED_SHOWN:
                    more = True
                    break
                rows.append(dict(zip(header, fields, strict=False)))
            if more:
                break
    finally:
        await answer.aclose()
    return Rejected(rows, more)


async def rejected_csv(deps: Deps, session: PageSession, run_id: uuid.UUID
                       ) -> httpx.Response:
    """The whole rejected list as the service streams it (for the download link)."""
    try:
        return await _rejected_stream(deps, session, run_id)
    except httpx.TransportError:
        raise Unavailable("sync-iwds") from None


async def decide(deps: Deps, session: PageSession, run_id: uuid.UUID, confirm: bool
                 ) -> dict[str, Any]:
    """Applies (confirm) or drops (discard) a held run; ApiError 409 unless it is held."""
    action = "confirm" if confirm else "discard"
    found: dict[str, Any] = await api(deps, session, "sync-iwds", "POST",
                                      f"/v1/runs/{run_id}/{action}")
    return found

