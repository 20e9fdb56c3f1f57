"""`csc` finds each service's commands through the csc.commands entry points."""

from __future__ import annotations

from importlib.metadata import entry_points

import typer
from typer.testing import CliRunner

from shared.cli.main import COMMANDS_GROUP, app


def test_every_registered_entry_point_is_a_typer_app_under_its_name() -> None:
    found = {e.name: e for e in entry_points(group=COMMANDS_GROUP)}
    assert "identity" in found
    for name, entry in found.items():
        assert isinstance(entry.load(), typer.Typer), name
    registered = {group.name for group in app.registered_groups}
    assert set(found) <= registered


def test_a_service_command_answers_through_csc() -> None:
    result = CliRunner().invoke(app, ["identity", "--help"])
    assert result.exit_code == 0, result.output
    assert "create-staff" in result.output


def test_an_unknown_service_is_one_line_and_non_zero() -> None:
    result = CliRunner().invoke(app, ["no-such-service", "anything"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output


def test_shared_imports_no_service() -> None:
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[3] / "shared"
    service = re.compile(r"^\s*(from|import)\s+(identity|enrollment|groups|notify|sync_iwds)\b",
                         re.M)
    offenders = [str(p) for p in root.rglob("*.py") if service.search(p.read_text())]
    assert offenders == []
