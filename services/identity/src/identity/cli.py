"""`csc identity ...`: operators' commands of the identity service."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.progress import TaskID

    from identity.service.imports import ImportSummary

app = typer.Typer(help="Accounts and signing keys.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(1)


@app.command("create-staff")
def create_staff(
    username: Annotated[str, typer.Option(help="sign-in name (case-insensitive)")],
    role: Annotated[list[str], typer.Option(help="admin, staff or reentry; repeat for more")],
    first_name: Annotated[str, typer.Option()] = "Staff",
    last_name: Annotated[str, typer.Option()] = "Member",
    email: Annotated[str | None, typer.Option()] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="read the password from standard input")] = False,
) -> None:
    """Create a staff account. The password comes on standard input, never as an argument."""
    from identity.deps import Deps
    from identity.domain.accounts import InvalidInput
    from identity.service.accounts import create_staff as create
    from identity.settings import IdentitySettings
    from shared.servicekit.db import create_pool
    from shared.servicekit.errors import Conflict

    if not password_stdin:
        raise _fail("pass --password-stdin and give the password on standard input")
    password = sys.stdin.readline().rstrip("\n")
    settings = IdentitySettings()

    async def go() -> str:
        pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
        try:
            staff_id = await create(
                pool, Deps.from_settings(settings), username=username,
                first_name=first_name, last_name=last_name, email=email, roles=role,
                password=password,
            )
            return str(staff_id)
        finally:
            await pool.close()

    try:
        staff_id = asyncio.run(go())
    except InvalidInput as exc:
        raise _fail("; ".join(f"{e.field}: {e.reason}" for e in exc.errors)) from None
    except Conflict as exc:
        raise _fail(f"{exc.field} {exc.reason}") from None
    except OSError as exc:
        raise _fail(f"database unreachable: {exc}") from None
    typer.echo(f"staff account {username} created (id {staff_id})")


@app.command("create-client")
def create_client(
    name: Annotated[str, typer.Option(help="who the credential is for")],
    scope: Annotated[
        list[str], typer.Option(help="iwds:feed, readiness:feed or identity:match; repeat")],
) -> None:
    """An OAuth2 client credential; prints {"client_id", "client_secret"} once."""
    import json

    from identity.service.clients import create_client as create
    from identity.settings import IdentitySettings
    from shared.servicekit.db import create_pool, transaction
    from shared.servicekit.errors import Conflict, InvalidInput

    settings = IdentitySettings()

    async def go() -> tuple[object, str]:
        pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
        try:
            async with transaction(pool) as conn:
                return await create(conn, name, scope)
        finally:
            await pool.close()

    try:
        client_id, secret = asyncio.run(go())
    except InvalidInput as exc:
        raise _fail("; ".join(f"{e.field}: {e.reason}" for e in exc.errors)) from None
    except Conflict as exc:
        raise _fail(f"{exc.field} {exc.reason}") from None
    except OSError as exc:
        raise _fail(f"database unreachable: {exc}") from None
    typer.echo(json.dumps({"client_id": str(client_id), "client_secret": secret}))


@app.command("rotate-keys")
def rotate_keys() -> None:
    """Start signing with a new key; the previous one stays published until the next rotation."""
    import asyncpg

    from identity.deps import Deps
    from identity.service.accounts import ensure_signing_key
    from identity.service.accounts import rotate_keys as rotate
    from identity.settings import IdentitySettings

    settings = IdentitySettings()
    ids = Deps.from_settings(settings)

    async def go() -> str:
        conn = await asyncpg.connect(settings.database_url.get_secret_value())
        try:
            await ensure_signing_key(conn, ids)
            return await rotate(conn, ids)
        finally:
            await conn.close()

    try:
        kid = asyncio.run(go())
    except OSError as exc:
        raise _fail(f"database unreachable: {exc}") from None
    typer.echo(f"signing with new key {kid}; the previous key stays published for verification")


@app.command("import-customers")
def import_customers(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="CSV with a header row")],
    batch_rows: Annotated[int, typer.Option(min=100, max=50_000)] = 5_000,
) -> None:
    """Load existing customer accounts from a CSV file.

    Columns (all optional, but a row needs a first or a last name): username,
    first_name, last_name, date_of_birth (YYYY-MM-DD), ssn, email. Bad rows are
    listed with their line and reason and the rest are loaded; running the same
    file again creates nothing new. Imported accounts have no password until
    staff reset one.
    """
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from identity.deps import Deps
    from identity.service.imports import BadFile, read_csv
    from identity.service.imports import import_customers as run_import
    from identity.settings import IdentitySettings
    from shared.servicekit.db import create_pool

    settings = IdentitySettings()
    try:
        with file.open(newline="", encoding="utf-8-sig") as f:
            total = max(sum(1 for _ in f) - 1, 0)  # lines, for the bar; rows may span lines
    except UnicodeDecodeError:
        raise _fail(f"{file}: not UTF-8 text") from None

    async def go(progress: Progress, task: TaskID) -> ImportSummary:
        pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
        try:
            with file.open(newline="", encoding="utf-8-sig") as f:
                return await run_import(
                    pool, Deps.from_settings(settings), read_csv(f), batch_rows=batch_rows,
                    progress=lambda n: progress.advance(task, n))
        finally:
            await pool.close()

    started = time.monotonic()
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, transient=True) as progress:
            task = progress.add_task("rows", total=total)
            summary = asyncio.run(go(progress, task))
    except BadFile as exc:
        raise _fail(f"{file}: {exc}") from None
    except UnicodeDecodeError:
        raise _fail(f"{file}: not UTF-8 text") from None
    except OSError as exc:
        raise _fail(f"database unreachable: {exc}") from None
    seconds = time.monotonic() - started
    for e in summary.rejected:
        typer.echo(f"line {e.line}: {e.field} {e.reason}", err=True)
    typer.echo(
        f"{summary.read} rows read: {summary.imported} imported, "
        f"{summary.already_imported} already imported, {len(summary.rejected)} rejected "
        f"({summary.read / seconds if seconds else 0:,.0f} rows/s)"
    )


@app.command("fit-matcher")
def fit_matcher(
    sample: Annotated[int, typer.Option(min=100, max=200_000,
                                        help="accounts matched against the rest (EM)")] = 5_000,
    random_pairs: Annotated[int, typer.Option(min=1_000, max=5_000_000,
                                              help="random pairs of them (u)")] = 200_000,
    seed: Annotated[int | None, typer.Option(help="for a repeatable sample")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="print the fitted weights, write nothing")] = False,
    rekey: Annotated[bool, typer.Option(
        "--rekey", help="first recompute every account's block keys (after an upgrade "
        "that changed the blocks)")] = False,
) -> None:
    """Refit the matcher's weights from the accounts and write them to match_weights.

    u of each outcome from random pairs of accounts, m by expectation-maximisation over
    the pairs the blocks bring together, and each name's frequency for the
    term-frequency adjustment. Running processes use the new weights within a minute.
    """
    import json

    from identity.domain.matching_weights import Weights
    from identity.service import matcher as matcher_svc
    from identity.service import matching as matches
    from identity.settings import IdentitySettings
    from shared.servicekit.db import create_pool

    settings = IdentitySettings()
    matcher = matcher_svc.Matcher.from_settings(settings)

    async def go() -> tuple[Weights, int | None, int]:
        pool = await create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
        try:
            rekeyed = await matches.rekey_accounts(pool) if rekey else 0
            weights = await matches.fit_from_accounts(
                pool, matcher, sample=sample, random_pairs=random_pairs, seed=seed)
            saved = None if dry_run else await matches.save_weights(pool, weights)
            return weights, saved, rekeyed
        finally:
            await pool.close()

    try:
        weights, saved, rekeyed = asyncio.run(go())
    except OSError as exc:
        raise _fail(f"database unreachable: {exc}") from None
    if rekey:
        typer.echo(f"block keys recomputed for {rekeyed} accounts")
    fitted = weights.fitted or {}
    typer.echo(f"fitted from {fitted.get('accounts')} accounts: "
               f"{fitted.get('candidate_pairs')} candidate pairs,"
               f" {fitted.get('random_pairs')} random pairs,"
               f" lambda {float(str(fitted.get('lambda', 0))):.4f}")
    for fld, rules in weights.rules.items():
        for code, rule in rules.items():
            typer.echo(f"  {fld:<14} {code:<20} m {rule.m:.4f}  u {rule.u:.3g}"
                       f"  weight {rule.weight:+.2f}")
    commonest = sorted((weights.last_tf or {}).items(), key=lambda kv: -kv[1])[:5]
    typer.echo("  commonest last names: " + json.dumps(dict(commonest)))
    typer.echo("dry run: nothing written" if saved is None else f"weights {saved} written")
