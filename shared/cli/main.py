"""``csc``: the operators' command line (typer); its commands are in
`shared.cli.commands`.

Every command exits non-zero with a one-line reason on failure.
"""

from __future__ import annotations

from typing import Any


def main() -> None:
    from shared.cli.commands import main as run

    run()


def __getattr__(name: str) -> Any:
    """``app`` (every command, the services' too) and the rest of the commands
    module, for tests and tools that import them from here."""
    from shared.cli import commands

    if name == "app":
        return commands.with_services()
    return getattr(commands, name)
