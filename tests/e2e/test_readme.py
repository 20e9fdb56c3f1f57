"""The README works when pasted: its shell blocks run, in order, against `csc dev`.

Every ```sh block of README.md runs in one bash session (so a block may use what
an earlier one set), from the project's folder, exactly as printed, while the
stack runs on the README's own ports. curl fails on any HTTP error, except
where an example prints the status code itself (``-w '%{http_code}'``). A block preceded
by ``<!-- readme: not run (why) -->`` is left out: the long-running ones
(``make dev``, ``make test``, Docker, the benchmarks).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli.services import SERVICES
from shared.devstack.processes import port_is_free

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(
    r"(?P<marker><!-- readme: not run[^>]*-->\s*\n)?```sh\n(?P<body>.*?)^```", re.S | re.M
)
PREAMBLE = """set -euo pipefail
curl() {  # an HTTP error fails the run, unless the example prints the status itself (-w)
  case " $* " in
    *" -w "*) command curl --silent --show-error "$@" ;;
    *) command curl --silent --show-error --fail-with-body "$@" ;;
  esac
}
"""
DEFAULT_PORTS = [5432, 9092, 1025, 8025, *(info.port for info in SERVICES.values())]


def readme_blocks(text: str) -> tuple[list[str], list[str]]:
    """(blocks to run, blocks left out)."""
    run, left = [], []
    for m in BLOCK.finditer(text):
        (left if m.group("marker") else run).append(m.group("body"))
    return run, left


def test_readme_blocks_are_found_and_the_long_running_ones_marked() -> None:
    run, left = readme_blocks((ROOT / "README.md").read_text())
    assert len(run) >= 5
    assert any("make dev" in b for b in left) and not any("make dev" in b for b in run)
    assert not any("docker compose" in b for b in run)


def test_every_readme_command_works_against_the_dev_stack(tmp_path: Path) -> None:
    busy = [p for p in DEFAULT_PORTS if not port_is_free(p)]
    if busy:
        pytest.skip(f"the README's ports are taken here: {busy}")
    run, _ = readme_blocks((ROOT / "README.md").read_text())
    script = tmp_path / "readme.sh"
    script.write_text(PREAMBLE + "\n".join(run))
    root = tmp_path / "local"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CSC_", *(i.env_prefix for i in SERVICES.values())))}
    csc = Path(sys.executable).parent / "csc"
    stack = subprocess.Popen(
        [str(csc), "dev", "--root", str(root)], env=env, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert stack.stdout is not None
        seen = ""
        for line in stack.stdout:
            seen += line
            if "Press Ctrl-C to stop." in line:
                break
        else:
            raise AssertionError(f"the stack did not start:\n{seen}")
        # a second terminal in the project's folder: the stack's dev.env is under
        # its --root here, so point csc at it as `make dev` would at .local/dev.env
        done = subprocess.run(
            ["bash", str(script)], cwd=ROOT, capture_output=True, text=True, timeout=600,
            env={**env, "CSC_DEV_ENV": str(root / "dev.env"), "TMPDIR": str(tmp_path)},
        )
        assert done.returncode == 0, (
            f"a README command failed (exit {done.returncode}):\n"
            f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
        )
        assert "Traceback" not in done.stderr
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            stack.kill()
            stack.communicate()
