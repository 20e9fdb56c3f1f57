"""`csc dev` brings the whole system up on free ports, and Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shared.cli.services import SERVICES
from shared.devstack.processes import free_port
from tests.support.kit import PATIENCE


def _wait_for(proc: subprocess.Popen[str], text: str, timeout: float) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"{text!r} not printed; output so far:\n{seen}")


def _wait_ready(url: str, timeout: float) -> None:
    """Poll until the service answers ready (a condition, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code == 200:
                return
            last = r.text
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready after {timeout}s: {last}")


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "CSC_DEV_PG_PORT": str(free_port()),
        "CSC_DEV_BROKER_PORT": str(free_port()),
        "CSC_DEV_SMTP_PORT": str(free_port()),
        "CSC_DEV_MAIL_WEB_PORT": str(free_port()),
    })
    for info in SERVICES.values():
        env[f"{info.env_prefix}PORT"] = str(free_port())
    return env


def test_dev_stack_starts_every_service_and_stops_on_ctrl_c(
    tmp_path: Path, stack_env: dict[str, str]
) -> None:
    csc = Path(sys.executable).parent / "csc"
    proc = subprocess.Popen(
        [str(csc), "dev", "--root", str(tmp_path / "local")], env=stack_env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        _wait_for(proc, "Press Ctrl-C to stop.", 120)
        for info in SERVICES.values():
            port = stack_env[f"{info.env_prefix}PORT"]
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", headers={"X-Request-ID": "e2e-1"})
            assert ready.status_code == 200, (info.name, ready.text)
            assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
            assert ready.headers["x-request-id"] == "e2e-1"
            missing = httpx.get(f"http://127.0.0.1:{port}/v1/nothing-here")
            assert missing.status_code == 404
            assert missing.headers["content-type"].startswith("application/problem+json")
        # a second terminal's `csc` needs no settings: the stack left them in dev.env
        dev_env = tmp_path / "local" / "dev.env"
        assert f"IDENTITY_PORT={stack_env['IDENTITY_PORT']}" in dev_env.read_text()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CSC_", "IDENTITY_", "GROUPS_", "ENROLLMENT_"))}
        env["CSC_DEV_ENV"] = str(dev_env)
        made = subprocess.run(
            [str(csc), "identity", "create-staff", "--username", "e2e.admin", "--role", "admin",
             "--first-name", "Eve", "--last-name", "Tester", "--password-stdin"],
            input="copper kettle winter garden 9\n", env=env, capture_output=True, text=True,
            timeout=60,
        )
        assert made.returncode == 0, made.stderr
        identity = f"http://127.0.0.1:{stack_env['IDENTITY_PORT']}"
        form = {"username": "e2e.admin", "password": "copper kettle winter garden 9"}
        signed = httpx.post(f"{identity}/v1/auth/token", data=form)
        assert signed.status_code == 200, signed.text
        token = signed.json()["access_token"]
        keys = httpx.get(f"{identity}/.well-known/jwks.json").json()["keys"]
        assert len(keys) == 1 and "d" not in keys[0]
        me = httpx.get(f"{identity}/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["roles"] == ["admin"]
        # a part that dies is restarted with a line on the terminal, and serves again
        groups_port = stack_env["GROUPS_PORT"]
        pattern = f"groups.app:create_app.*--port {groups_port}"
        subprocess.run(["pkill", "-KILL", "-f", pattern], check=True)
        _wait_for(proc, "groups stopped (code -9); restarting it", 30)
        _wait_ready(f"http://127.0.0.1:{groups_port}/readyz", 60)
        broker = subprocess.run(["pkill", "-KILL", "-f", f":{stack_env['CSC_DEV_BROKER_PORT']}"])
        assert broker.returncode == 0
        _wait_for(proc, "broker stopped (code -9); restarting it", 30)
        _wait_ready(f"http://127.0.0.1:{groups_port}/readyz", 60)
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60 * PATIENCE)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate()  # everything it printed, the part read so far too
            pytest.fail(f"`csc dev` did not stop within {60 * PATIENCE:.0f} s of Ctrl-C; "
                        f"it printed:\n{rest[-4000:]}")
        assert proc.returncode == 0, out
        assert "stopped." in out
        for info in SERVICES.values():
            port = int(stack_env[f"{info.env_prefix}PORT"])
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://127.0.0.1:{port}/healthz")
        # data is kept under the root folder for the next start; dev.env goes away
        assert (tmp_path / "local" / "pg" / "data" / "PG_VERSION").exists()
        assert not dev_env.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_dev_stack_refuses_a_taken_port_with_one_line(
    tmp_path: Path, stack_env: dict[str, str]
) -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(stack_env["CSC_DEV_BROKER_PORT"])))
        blocker.listen()
        csc = Path(sys.executable).parent / "csc"
        result = subprocess.run(
            [str(csc), "dev", "--root", str(tmp_path / "local")], env=stack_env,
            capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: broker: port {stack_env['CSC_DEV_BROKER_PORT']} is already in use"
    ]
