"""Add Customer across real processes: identity and enrollment each run by uvicorn as
in production, staff made with the `csc` command, everything over HTTP. Enrollment
finds identity from CSC_JWKS_URL alone; when identity's process dies, Add Customer
answers 503 and the list still works."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.devstack.processes import free_port
from tests.integration.enrollment.conftest import NEW_PASSWORD, STAFF_PASSWORD, form
from tests.support.stack import Servers

CSC = str(Path(sys.executable).parent / "csc")


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _start(package: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"{package}.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{url} exited with {proc.returncode}"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready in {timeout}s")


@pytest.fixture
def processes(servers: Servers) -> Iterator[tuple[str, str, dict[str, str],
                                                  list[subprocess.Popen[bytes]]]]:
    import asyncio

    from tests.integration.enrollment.conftest import drop_database, fresh_database

    names = [asyncio.run(fresh_database(servers)) for _ in range(2)]
    id_port, en_port = free_port(), free_port()
    identity, enrollment = f"http://127.0.0.1:{id_port}", f"http://127.0.0.1:{en_port}"
    env = {**os.environ, "CSC_ENV": "test", "CSC_KAFKA_BOOTSTRAP": servers.bootstrap,
           "CSC_KAFKA_CONSUMER_MODE": "assign",
           "CSC_JWKS_URL": f"{identity}/.well-known/jwks.json",
           "IDENTITY_DATABASE_URL": servers.pg_dsn(names[0]),
           "ENROLLMENT_DATABASE_URL": servers.pg_dsn(names[1]),
           "IDENTITY_SSN_KEYS": f"k1:{_key()}", "IDENTITY_SSN_ACTIVE_KEY": "k1",
           "IDENTITY_SSN_HMAC_KEY": _key(), "IDENTITY_DATA_KEY": _key()}
    env.pop("ENROLLMENT_IDENTITY_URL", None)
    procs = [_start("identity", id_port, env)]
    try:
        _ready(identity, procs[0])
        procs.append(_start("enrollment", en_port, env))
        _ready(enrollment, procs[1])
        yield identity, enrollment, env, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(15)
        for name in names:
            asyncio.run(drop_database(servers, name))


def _create_staff(env: dict[str, str], *accounts: tuple[str, str]) -> None:
    """`csc identity create-staff` for each (username, role), side by side."""
    running = [subprocess.Popen(
        [CSC, "identity", "create-staff", "--username", username, "--role", role,
         "--password-stdin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=env, text=True) for username, role in accounts]
    for proc in running:
        out, err = proc.communicate(STAFF_PASSWORD + "\n", timeout=60)
        assert proc.returncode == 0, err
        assert "created" in out


def _token(identity: str, username: str, password: str = STAFF_PASSWORD) -> str:
    r = httpx.post(f"{identity}/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_add_customer_across_processes(
    processes: tuple[str, str, dict[str, str], list[subprocess.Popen[bytes]]]
) -> None:
    identity, enrollment, env, procs = processes
    _create_staff(env, ("admin1", "admin"), ("rcase", "reentry"))
    admin = {"Authorization": f"Bearer {_token(identity, 'admin1')}"}
    staff = {"Authorization": f"Bearer {_token(identity, 'rcase')}"}
    staff_id = httpx.get(f"{identity}/v1/me", headers=staff).json()["id"]
    with httpx.Client(base_url=enrollment, timeout=10) as c:
        deadline = time.monotonic() + 30
        while True:  # until enrollment has heard of the new staff member
            r = c.put(f"/v1/programs/returning-citizens/staff/{staff_id}", headers=admin)
            if r.status_code in (200, 201) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 201, r.text

        r = c.post("/v1/returning-citizens/matches", json=form(), headers=staff)
        assert r.status_code == 200 and r.json()["candidates"] == [], r.text
        r = c.post("/v1/returning-citizens", json=form(),
                   headers={**staff, "Idempotency-Key": "e2e-1"})
        assert r.status_code == 201, r.text
        created = r.json()
        temporary = _token(identity, created["username"], created["temporary_password"])
        r = httpx.post(f"{identity}/v1/me/password",
                       headers={"Authorization": f"Bearer {temporary}"},
                       json={"current_password": created["temporary_password"],
                             "new_password": NEW_PASSWORD})
        assert r.status_code == 204, r.text
        assert _token(identity, created["username"], NEW_PASSWORD)

        r = c.get(f"/v1/returning-citizens/{created['enrollment_id']}", headers=staff)
        assert r.status_code == 200 and r.json()["customer_id"] == created["account_id"]

        procs[0].kill()  # identity is gone
        procs[0].wait(10)
        r = c.post("/v1/returning-citizens/matches", json=form(idoc_number="K54321",
                   idoc_number_confirmation="K54321"), headers=staff)
        assert r.status_code == 503, r.text
        assert r.json()["type"].endswith("/identity-unavailable")
        r = c.get("/v1/returning-citizens", headers=staff)
        assert r.status_code == 200 and len(r.json()["items"]) == 1
