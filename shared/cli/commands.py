"""``csc``'s commands (typer); `shared.cli.main` is the entry point.

Every command exits non-zero with a one-line reason on failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Coroutine
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from shared.cli.keys import app as keys_app
from shared.cli.services import SERVICES, ServiceInfo
from shared.servicekit.redaction import redact

app = typer.Typer(
    help="Customer Support Center operators' commands.", no_args_is_help=True,
    pretty_exceptions_enable=False,
)
dlq_app = typer.Typer(help="Dead-lettered events.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(keys_app, name="keys")


COMMANDS_GROUP = "csc.commands"


def with_services(first: str | None = None) -> typer.Typer:
    """The app with the services' own subcommands (`csc identity ...`), which each
    service brings through the ``csc.commands`` entry points of the project
    (pyproject.toml): a name -> a Typer app. shared/ imports no service.

    ``first`` is the command line's first word: a command of csc's own needs no
    service loaded (loading them all imports every service, about 1.5 s, which a
    `csc json` in a shell pipeline should not pay); a service's name loads that one;
    anything else (help, a typo) loads them all, so help lists them."""
    own = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    own |= {g.name for g in app.registered_groups if g.name}
    if first in own:
        return app
    entries = sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name)
    if first in {e.name for e in entries}:
        entries = [e for e in entries if e.name == first]
    for entry in entries:
        if entry.name not in own:
            app.add_typer(entry.load(), name=entry.name)
    return app

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def dev_env_file() -> Path | None:
    """The settings `make dev` left for a second terminal: $CSC_DEV_ENV, else
    .local/dev.env in the current folder or in the project."""
    named = os.environ.get("CSC_DEV_ENV")
    if named:
        return Path(named)
    for root in (Path.cwd(), PROJECT_ROOT):
        candidate = root / ".local" / "dev.env"
        if candidate.is_file():
            return candidate
    return None


def read_dev_env(path: Path) -> dict[str, str]:
    """KEY=value lines of the dev stack's settings file (the stack itself is not
    imported: a `csc json` in a pipeline should start quickly)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def load_dev_env() -> None:
    """Settings given in the environment win; the dev stack's fill in the rest.
    With no settings at all and no stack running, commands fail in one line."""
    path = dev_env_file()
    if path is None or not path.is_file():
        return
    for key, value in read_dev_env(path).items():
        os.environ.setdefault(key, value)


def main() -> None:
    """The `csc` command: every failure is one line on stderr and a non-zero exit,
    never a traceback."""
    load_dev_env()
    try:
        first = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
        with_services(first)(standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        message = redact(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
        if dev_env_file() is None and "CSC_ENV" not in os.environ:
            message += " (no settings given and no dev stack found: is `make dev` running?)"
        typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
        sys.exit(1)

T = TypeVar("T")
ServiceOpt = Annotated[
    str, typer.Option("--service", "-s", help="identity, groups, enrollment, sync-iwds or notify")
]


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(1)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    import asyncpg  # here, not at the top: `csc json` never needs it

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


@app.command("json")
def json_field(
    path: Annotated[str, typer.Argument(help="a dotted path, e.g. access_token or items.0.id")],
) -> None:
    """Print one field of the JSON read on standard input (for shell scripts:
    `TOKEN=$(curl ... | csc json access_token)`)."""
    text = sys.stdin.read()
    try:
        value: Any = json.loads(text)
    except ValueError:
        raise fail(f"standard input is not JSON: {redact(text.strip()[:200])}") from None
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise fail(f"no {path!r} in {redact(text.strip()[:200])}")
    typer.echo(value if isinstance(value, str) else json.dumps(value))


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
        import asyncpg

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
            f"{d.topic}[{d.partition}]@{d.offset}\t{state}\t{' '.join(d.error.split())[:120]}"
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
    from shared.servicekit.sessions import with_revocations

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
                    return await replay(conn, dead_letter_id,
                                        with_revocations(spec.subscriptions), deps)
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
