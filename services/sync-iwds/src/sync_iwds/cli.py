"""`csc iwds ...`: operators' commands of the sync-iwds service.

Exit status of import and confirm: 0 done, 3 held (waits for confirm or discard),
1 refused or any other failure (one line on standard error).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

app = typer.Typer(help="IWDS extracts: import, confirm or discard held runs.",
                  no_args_is_help=True)
OPERATOR = "csc-cli"
SHOWN_REJECTIONS = 20


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(1)


def _summary(run: Any) -> str:
    c = run.counts
    text = (f"run {run.id} {run.status}: {c.read} read, {c.added} added, {c.changed} changed, "
            f"{c.removed} removed, {c.unchanged} unchanged, {c.rejected} rejected, "
            f"{c.unlinked} unlinked")
    return text + (f" ({run.message})" if run.message else "")


def _with_pool(work: Callable[[Any, Any], Awaitable[Any]]) -> Any:
    from shared.servicekit.db import create_pool
    from sync_iwds.deps import build_deps
    from sync_iwds.settings import SyncIwdsSettings

    settings = SyncIwdsSettings()

    async def go() -> Any:
        from shared.servicekit.runtime import migrate_database
        from sync_iwds.app import SPEC

        await migrate_database(SPEC, settings.database_url.get_secret_value())
        pool = await create_pool(settings.database_url.get_secret_value(), min_size=1,
                                 max_size=3)
        try:
            deps = await build_deps(settings, pool)
            return await work(pool, deps)
        finally:
            await pool.close()

    try:
        return asyncio.run(go())
    except TimeoutError:
        raise _fail("a database statement took too long; the run is resumed at the "
                    "next start") from None
    except OSError as exc:
        raise _fail(f"database unreachable: {exc}") from None


def _finish(run: Any) -> None:
    from sync_iwds.domain import exit_code

    typer.echo(_summary(run))
    raise typer.Exit(exit_code(run.status))


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="CSV (optionally gzip) or NDJSON")],
    feed: Annotated[Literal["participants", "staff-access"], typer.Option(
        help="participants or staff-access")],
    partial: Annotated[bool, typer.Option(
        "--partial", help="only the records in the file (no removals)")] = False,
) -> None:
    """Import an IWDS extract: a full extract unless --partial."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from sync_iwds import service

    async def work(pool: Any, deps: Any) -> Any:
        await service.recover(pool, deps)  # a run an earlier crash left behind
        if not sys.stderr.isatty():
            return await service.import_file(
                pool, deps, feed=feed, mode="partial" if partial else "full", path=file)
        columns = (TextColumn(f"importing {feed}"), BarColumn(), DownloadColumn(),
                   TimeRemainingColumn())
        with Progress(*columns, transient=True) as progress:
            task = progress.add_task("bytes", total=file.stat().st_size)
            return await service.import_file(
                pool, deps, feed=feed, mode="partial" if partial else "full", path=file,
                progress=lambda n: progress.advance(task, n))

    run = _with_pool(work)
    if run.counts.rejected:
        _show_rejections(run.id)
    _finish(run)


def _show_rejections(run_id: uuid.UUID) -> None:
    from sync_iwds import service

    async def work(pool: Any, deps: Any) -> list[tuple[int, str, str]]:
        out: list[tuple[int, str, str]] = []
        async with service.rejected_rows(pool, run_id) as rows:
            async for row in rows:
                out.append(row)
                if len(out) >= SHOWN_REJECTIONS:
                    break
        return out

    for line, iwds_id, reason in _with_pool(work):
        typer.echo(f"line {line}: {iwds_id or '-'}: {reason}", err=True)


def _run_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise _fail(f"{text!r} is not a run id") from None


@app.command("confirm")
def confirm(run_id: Annotated[str, typer.Argument(help="a held run's id")]) -> None:
    """Apply a held run as it is."""
    from shared.servicekit.audit import Actor
    from shared.servicekit.errors import Conflict, NotFound
    from sync_iwds import service

    rid = _run_id(run_id)
    try:
        run = _with_pool(lambda pool, deps: service.confirm(pool, deps, rid, Actor.system()))
    except NotFound:
        raise _fail(f"no run {rid}") from None
    except Conflict as exc:
        raise _fail(f"run {rid} {exc.reason}") from None
    _finish(run)


@app.command("discard")
def discard(run_id: Annotated[str, typer.Argument(help="a held run's id")]) -> None:
    """Drop a held run: nothing of it is applied."""
    from shared.servicekit.audit import Actor
    from shared.servicekit.errors import Conflict, NotFound
    from sync_iwds import service

    rid = _run_id(run_id)
    try:
        run = _with_pool(lambda pool, deps: service.discard(pool, deps, rid, Actor.system()))
    except NotFound:
        raise _fail(f"no run {rid}") from None
    except Conflict as exc:
        raise _fail(f"run {rid} {exc.reason}") from None
    typer.echo(_summary(run))


@app.command("runs")
def runs(limit: Annotated[int, typer.Option(min=1, max=100)] = 10) -> None:
    """The newest runs, one line each."""
    from sync_iwds import service

    for run in _with_pool(lambda pool, deps: service.list_runs(pool, limit=limit, after=None)):
        typer.echo(f"{run.started_at:%Y-%m-%d %H:%M:%S} {run.feed} {run.mode} "
                   + _summary(run))
