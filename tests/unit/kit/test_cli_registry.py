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


def _modules_after(args: list[str], stdin: str = "") -> tuple[int, set[str], str]:
    """Run `csc <args>` in a fresh interpreter; which service packages it imported."""
    import subprocess
    import sys

    probe = ("import sys\nsys.argv = ['csc', *sys.argv[1:]]\nfrom shared.cli.main import main\n"
             "try:\n    main()\nexcept SystemExit as e:\n    code = e.code or 0\nelse:\n"
             "    code = 0\nnames = {'fastapi', 'identity', 'sync_iwds'} & set(sys.modules)\n"
             "print('LOADED', sorted(names), file=sys.stderr)\nsys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", probe, *args], input=stdin,
                          capture_output=True, text=True, timeout=60)
    line = next(x for x in done.stderr.splitlines() if x.startswith("LOADED"))
    return done.returncode, set(eval(line.split(" ", 1)[1])), done.stdout


def test_csc_json_loads_no_service_and_a_service_command_loads_only_its_own() -> None:
    code, loaded, out = _modules_after(["json", "a.b"], '{"a": {"b": "x"}}')
    assert (code, out.strip()) == (0, "x")
    assert loaded == set()  # no service, not even the web framework
    code, loaded, out = _modules_after(["identity", "--help"])
    assert code == 0 and "create-staff" in out
    assert "identity" in loaded and "sync_iwds" not in loaded
