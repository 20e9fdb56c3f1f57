"""``csc``: the operators' command line (typer).

Every command exits non-zero with a one-line reason on failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from importlib.metadata import entry_points
from typing import Annotated, Any, TypeVar

import asyncpg
import typer

from shared.cli.services import SERVICES, ServiceInfo

app = typer.Typer(help="Customer Support Center operators' commands.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead-lettered events.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


COMMANDS_GROUP = "csc.commands"


def _service_commands() -> None:
    """Each service brings its own subcommands (`csc identity ...`) through the
    ``csc.commands`` entry points of the project (pyproject.toml): a name -> a Typer
    app. shared/ imports no service."""
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        app.add_typer(entry.load(), name=entry.name)


_service_commands()

T = TypeVar("T")
ServiceOpt = Annotated[
    str, typer.Option("--service", "-s", help="identity, groups, enrollment, sync-iwds or notify")
]


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(1)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except (OSError, asyncpg.PostgresError) as exc:
        raise fail(f"{type(exc).__name__}: {exc}") from None


def _service(name: str) -> ServiceInfo:
    if name not in SERVICES:
        raise fail(f"unknown service {name!r} (one of: {', '.join(SERVICES)})")
    return SERVICES[name]


def _dsn(info: ServiceInfo) -> str:
    return info.spec().settings_cls().database_url.get_secret_value()


@app.command()
def dev(
    root: Annotated[str, typer.Option(help="where data and logs are kept")] = ".local",
) -> None:
    """Start PostgreSQL, the broker, the SMTP sink and every service; Ctrl-C stops all."""
    from shared.devstack.stack import DevStack, StackError

    try:
        DevStack.from_env(root).run()
    except StackError as exc:
        raise fail(str(exc)) from None


@app.command()
def migrate(
    services: Annotated[list[str] | None, typer.Argument(help="services (default: all)")] = None,
) -> None:
    """Apply pending migrations of each service's database."""
    from shared.servicekit.runtime import migrate_database

    for name in services or list(SERVICES):
        info = _service(name)
        applied = _run(migrate_database(info.spec(), _dsn(info)))
        typer.echo(f"{name}: {len(applied)} migration(s) applied" + (
            f" ({', '.join(applied)})" if applied else ""))


@app.command("create-topics")
def create_topics() -> None:
    """Create every topic (and its dead-letter topic) on the configured broker."""
    from shared.servicekit.broker import BrokerWatch
    from shared.servicekit.runtime import kafka_config, system_topics

    settings = SERVICES["identity"].spec().settings_cls()

    async def go() -> str:
        watch = BrokerWatch(kafka_config(settings, "csc-cli"), topics=system_topics())
        try:
            return await watch.establish()
        finally:
            await watch.close()

    try:
        epoch = asyncio.run(go())
    except Exception as exc:
        raise fail(f"broker at {settings.kafka_bootstrap}: {type(exc).__name__}: {exc}") from None
    typer.echo(f"{len(system_topics())} topics ready (broker epoch {epoch})")


@dlq_app.command("list")
def dlq_list(
    service: ServiceOpt,
    all_: Annotated[bool, typer.Option("--all", help="include replayed ones")] = False,
) -> None:
    """List dead-lettered events of a service."""
    from shared.servicekit.dlq import list_dead_letters

    info = _service(service)

    async def go() -> list[Any]:
        conn = await asyncpg.connect(_dsn(info))
        try:
            return await list_dead_letters(conn, include_replayed=all_)
        finally:
            await conn.close()

    letters = _run(go())
    if not letters:
        typer.echo("no dead letters")
    for d in letters:
        state = f"replayed {d.replayed_at:%Y-%m-%d %H:%M}" if d.replayed_at else "open"
        typer.echo(
            f"{d.id}\t{d.created_at:%Y-%m-%d %H:%M:%S}\t{d.event_type or '?'}\t"
            f"{d.topic}[{d.partition}]@{d.offset}\t{state}\t{d.error[:120]}"
        )


@dlq_app.command("replay")
def dlq_replay(
    dead_letter_id: Annotated[int, typer.Argument(metavar="ID")],
    service: ServiceOpt,
) -> None:
    """Apply a dead-lettered event again with the service's handler."""
    from shared.servicekit.db import create_pool
    from shared.servicekit.dlq import ReplayError, replay
    from shared.servicekit.runtime import build_deps

    info = _service(service)
    spec = info.spec()

    async def go() -> str:
        settings = spec.settings_cls()
        pool = await create_pool(settings.database_url.get_secret_value(), min_size=1,
                                 max_size=2)
        try:
            deps = await build_deps(spec, settings, pool)
            try:
                async with pool.acquire() as conn:
                    return await replay(conn, dead_letter_id, spec.subscriptions, deps)
            finally:
                if spec.stop_deps is not None:
                    await spec.stop_deps(deps)
        finally:
            await pool.close()

    try:
        event_type = _run(go())
    except ReplayError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"dead letter {dead_letter_id} ({event_type}) applied")
