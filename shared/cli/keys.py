"""`csc keys`: fresh secrets for a deployment's .env (never printed anywhere else).

deploy/.env.example names every secret the services need; a ``# kind: K`` line
above a variable says what it holds:

- ``password``: URL-safe random text (database passwords go into URLs);
- ``aes256``: 32 random bytes, base64 (data keys, HMAC keys);
- ``ssn-keys``: ``kid:BASE64`` for identity's SSN keys (with a dated key id);
- ``seal-keys``: ``kid:BASE64`` for the key identity seals the recovery link with,
  for notify only (shared/servicekit/seal.py);
- ``kid-of-VAR``: the key id of the key set in VAR;
- ``same-as-VAR``: the very value of VAR (two services holding one key).
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

KINDS: dict[str, Callable[[], str]] = {
    "password": lambda: secrets.token_hex(24),
    "aes256": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
    "ssn-keys": lambda: f"k{datetime.now(UTC):%Y%m%d}:"
    + base64.b64encode(secrets.token_bytes(32)).decode(),
    "seal-keys": lambda: f"s{datetime.now(UTC):%Y%m%d}:"
    + base64.b64encode(secrets.token_bytes(32)).decode(),
}
_KIND_LINE = re.compile(r"#\s*kind:\s*(?P<kind>[\w-]+)")
_VAR_LINE = re.compile(r"(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)")
EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / ".env.example"

app = typer.Typer(help="Fresh secrets for a deployment.", no_args_is_help=True)


def fill_env(example: str, make: Callable[[str], str] | None = None) -> str:
    """The example with every empty variable given a fresh value of its kind;
    a ``derive: VAR`` kind copies the key id of an SSN key set (see the example)."""
    make = make or (lambda kind: KINDS[kind]())
    out: list[str] = []
    kind = "password"
    values: dict[str, str] = {}
    for line in example.splitlines():
        k = _KIND_LINE.fullmatch(line.strip())
        if k:
            kind = k.group("kind")
        v = _VAR_LINE.fullmatch(line.strip())
        if v and not v.group("value"):
            if kind.startswith("kid-of-"):
                source = values[kind.removeprefix("kid-of-")]
                value = source.split(":", 1)[0]
            elif kind.startswith("same-as-"):
                value = values[kind.removeprefix("same-as-")]
            elif kind in KINDS:
                value = make(kind)
            else:
                raise ValueError(f"unknown kind {kind!r} for {v.group('name')}")
            values[v.group("name")] = value
            line = f"{v.group('name')}={value}"
            kind = "password"
        elif v:
            values[v.group("name")] = v.group("value")
        out.append(line)
    return "\n".join(out) + "\n"


@app.command("new")
def new(
    kind: Annotated[str, typer.Option(help="password, aes256, ssn-keys or seal-keys")
                    ] = "aes256",
) -> None:
    """Print one fresh secret of a kind."""
    if kind not in KINDS:
        _fail(f"--kind must be one of {', '.join(KINDS)}")
    typer.echo(KINDS[kind]())


@app.command("env")
def env(
    example: Annotated[Path, typer.Option(help="the example to fill")] = EXAMPLE,
) -> None:
    """Print deploy/.env.example with every secret filled: `csc keys env > .env`."""
    try:
        text = example.read_text()
    except OSError as exc:
        _fail(f"cannot read {example}: {exc.strerror}")
    try:
        typer.echo(fill_env(text), nl=False)
    except (ValueError, KeyError) as exc:
        _fail(f"{example}: {exc}")


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(1)
