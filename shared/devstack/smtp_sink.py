"""Local SMTP sink: stores every message as ``<unix-ns>-<uuid>.eml`` (+ ``.json`` envelope).

python -m shared.devstack.smtp_sink --dir .local/mail --smtp-port 1025 --web-port 8025

Failures on demand: ``--refuse PATTERN`` answers RCPT TO with 550 (permanent) and
``--defer PATTERN`` with 451 (temporary) for matching addresses (shell-style patterns,
case-insensitive, e.g. ``'*@bounce.example'``); ``--defer-times N`` defers each
address only its first N times, then accepts it. ``make dev`` reads the same from
``CSC_SMTP_SINK_REFUSE`` / ``CSC_SMTP_SINK_DEFER`` (comma-separated patterns) and
``CSC_SMTP_SINK_DEFER_TIMES``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.policy
import errno
import fnmatch
import html
import json
import os
import re
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Self

import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

ID_RE = re.compile(r"\A[0-9]{1,20}-[0-9a-f]{32}\Z")


class MessageNotFoundError(LookupError):
    """No stored message has this id (or the id is not a valid message id)."""


@dataclass(frozen=True)
class StoredMessage:
    id: str
    received_at: datetime
    mail_from: str
    rcpt_tos: list[str]
    subject: str
    to: str

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "received_at": self.received_at.isoformat()}


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def store_message(directory: Path, mail_from: str, rcpt_tos: list[str], content: bytes) -> str:
    """Store one message; return its id. The sidecar is written before the .eml."""
    directory.mkdir(parents=True, exist_ok=True)
    msg_id = f"{time.time_ns()}-{uuid.uuid4().hex}"
    envelope = {"mail_from": mail_from, "rcpt_tos": rcpt_tos}
    _atomic_write(directory / f"{msg_id}.json", json.dumps(envelope).encode())
    _atomic_write(directory / f"{msg_id}.eml", content)
    return msg_id


def _header(msg: EmailMessage, name: str) -> str:
    return str(msg.get(name, ""))


def _load(directory: Path, msg_id: str) -> StoredMessage | None:
    try:
        with open(directory / f"{msg_id}.eml", "rb") as f:
            msg = BytesParser(policy=email.policy.default).parse(f, headersonly=True)
    except FileNotFoundError:
        return None
    try:
        envelope = json.loads((directory / f"{msg_id}.json").read_text())
    except (OSError, ValueError):
        envelope = {}
    ns = int(msg_id.split("-", 1)[0])
    return StoredMessage(
        id=msg_id,
        received_at=datetime.fromtimestamp(ns / 1e9, tz=UTC),
        mail_from=str(envelope.get("mail_from", "")),
        rcpt_tos=[str(r) for r in envelope.get("rcpt_tos", [])],
        subject=_header(msg, "Subject"),
        to=_header(msg, "To"),
    )


def list_messages(directory: Path) -> list[StoredMessage]:
    """All stored messages, oldest first."""
    if not directory.is_dir():
        return []
    ids = sorted(p.stem for p in directory.glob("*.eml") if ID_RE.match(p.stem))
    return [m for m in (_load(directory, i) for i in ids) if m is not None]


def read_message(directory: Path, msg_id: str) -> EmailMessage:
    """Parse a stored message; raise MessageNotFoundError for unknown/invalid ids."""
    path = directory / f"{msg_id}.eml"
    if not ID_RE.match(msg_id) or not path.is_file():
        raise MessageNotFoundError(msg_id)
    with open(path, "rb") as f:
        msg = BytesParser(policy=email.policy.default).parse(f)
    assert isinstance(msg, EmailMessage)
    return msg


def clear(directory: Path) -> int:
    """Delete every stored message; return how many were removed."""
    if not directory.is_dir():
        return 0
    removed = 0
    for path in directory.iterdir():
        if path.suffix in (".eml", ".json") and ID_RE.match(path.stem):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += path.suffix == ".eml"
    return removed


async def wait_for(
    directory: Path, predicate: Callable[[StoredMessage], bool], timeout: float = 5.0
) -> StoredMessage:
    """Poll (every 20 ms) until a stored message matches; raise TimeoutError otherwise."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for m in list_messages(directory):
            if predicate(m):
                return m
        if asyncio.get_running_loop().time() >= deadline:
            raise TimeoutError(f"no matching message in {directory} within {timeout}s")
        await asyncio.sleep(0.02)


def text_body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        return str(part.get_content())
    except (LookupError, ValueError):  # unknown charset, broken encoding
        return ""


def create_app(directory: Path) -> FastAPI:
    app = FastAPI(title="SMTP sink", docs_url=None, redoc_url=None, openapi_url=None)
    not_found = JSONResponse({"detail": "message not found"}, status_code=404)
    e = html.escape

    def page(title: str, body: str) -> HTMLResponse:
        return HTMLResponse(
            f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
            f"</head><body>{body}</body></html>"
        )

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        rows = "".join(
            f"<tr><td>{e(m.received_at.isoformat())}</td><td>{e(m.mail_from)}</td>"
            f"<td>{e(', '.join(m.rcpt_tos))}</td>"
            f"<td><a href='/messages/{e(m.id)}'>{e(m.subject or '(no subject)')}</a></td></tr>"
            for m in reversed(list_messages(directory))
        )
        head = "<tr><th>received</th><th>from</th><th>to</th><th>subject</th></tr>"
        return page("SMTP sink", f"<h1>SMTP sink</h1><table>{head}{rows}</table>")

    @app.get("/messages/{msg_id}", response_model=None)
    def show(msg_id: str) -> HTMLResponse | JSONResponse:
        try:
            msg = read_message(directory, msg_id)
        except MessageNotFoundError:
            return not_found
        headers = "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in msg.items())
        body = (
            f"<p><a href='/'>all messages</a></p><dl>{headers}</dl><pre>{e(text_body(msg))}</pre>"
        )
        return page(_header(msg, "Subject") or msg_id, body)

    @app.get("/api/messages")
    def api_list() -> list[dict[str, Any]]:
        return [m.to_json() for m in list_messages(directory)]

    @app.get("/api/messages/{msg_id}", response_model=None)
    def api_show(msg_id: str) -> dict[str, Any] | JSONResponse:
        try:
            msg = read_message(directory, msg_id)
        except MessageNotFoundError:
            return not_found
        meta = _load(directory, msg_id)
        return {
            **(meta.to_json() if meta else {"id": msg_id}),
            "headers": [[k, str(v)] for k, v in msg.items()],
            "text": text_body(msg),
        }

    @app.delete("/api/messages")
    def api_clear() -> dict[str, int]:
        return {"deleted": clear(directory)}

    return app


class _QuietServer(uvicorn.Server):
    """uvicorn server that leaves process signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _patterns(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip().lower() for p in (value or "").split(",") if p.strip())


@dataclass
class FailureRules:
    """Which recipients the sink refuses (550) or defers (451); changeable while it runs."""

    refuse: tuple[str, ...] = ()
    defer: tuple[str, ...] = ()
    defer_times: int = 0  # 0: always defer; N: defer an address N times, then accept
    deferred: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> FailureRules:
        times = os.environ.get("CSC_SMTP_SINK_DEFER_TIMES", "0").strip() or "0"
        return cls(
            refuse=_patterns(os.environ.get("CSC_SMTP_SINK_REFUSE")),
            defer=_patterns(os.environ.get("CSC_SMTP_SINK_DEFER")),
            defer_times=max(0, int(times)),
        )

    @staticmethod
    def _matches(address: str, patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatchcase(address, p.lower()) for p in patterns)

    def answer(self, address: str) -> str | None:
        """The SMTP reply refusing ``address``, or None to accept it."""
        addr = address.strip().lower()
        if self._matches(addr, self.refuse):
            return "550 5.1.1 Mailbox unavailable (refused by the sink)"
        if self._matches(addr, self.defer):
            seen = self.deferred.get(addr, 0)
            if self.defer_times == 0 or seen < self.defer_times:
                self.deferred[addr] = seen + 1
                return "451 4.3.0 Try again later (deferred by the sink)"
        return None


MAX_LINE = 4096  # a command line (RFC 5321 allows 512; be lenient)
MAX_MESSAGE = 32 * 1024 * 1024
_ADDRESS = re.compile(rb"\A\s*(?:FROM|TO):\s*<([^<>\r\n]*)>(?:\s.*)?\Z", re.I | re.S)


class SinkSession(asyncio.Protocol):
    """One SMTP connection (RFC 5321: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT),
    with PIPELINING (RFC 2920: the replies to commands that came in one read go out in
    one write) and 8BITMIME / SMTPUTF8. Written as a plain asyncio protocol rather than
    on aiosmtpd's stream reader: a stored message costs a few parses of the read buffer
    instead of a coroutine step per line, so the sink is not what a notify benchmark
    measures."""

    def __init__(self, sink: MailSink) -> None:
        self.sink = sink
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.out: list[bytes] = []
        self.greeted = False
        self.in_data = False
        self._scanned = 0
        self._reset()

    def _reset(self) -> None:
        self.mail_from: str | None = None
        self.rcpt_tos: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.sink._sessions.add(self)
        transport.write(b"220 smtp-sink ESMTP ready\r\n")

    def connection_lost(self, exc: Exception | None) -> None:
        self.sink._sessions.discard(self)
        self.transport = None

    def _reply(self, line: str) -> None:
        self.out.append(line.encode("utf-8", "replace") + b"\r\n")

    def data_received(self, data: bytes) -> None:
        self.buf += data
        closing = False
        while not closing:
            if self.in_data:
                if not self._take_message():
                    break
                continue
            end = self.buf.find(b"\r\n")
            if end < 0:
                if len(self.buf) > MAX_LINE:
                    self._reply("500 5.5.2 Error: line too long")
                    self.buf.clear()
                break
            line = bytes(self.buf[:end])
            del self.buf[:end + 2]
            closing = self._command(line)
        if self.out and self.transport is not None:
            self.transport.write(b"".join(self.out))
            self.out.clear()
        if closing and self.transport is not None:
            self.transport.close()

    def _take_message(self) -> bool:
        """The message, once its end (CRLF.CRLF) is in the buffer; True when taken."""
        if self.buf.startswith(b".\r\n"):
            end, skip = 0, 3
        else:
            end = self.buf.find(b"\r\n.\r\n", self._scanned)
            if end < 0:
                self._scanned = max(0, len(self.buf) - 4)  # a big message: scan each byte once
                if len(self.buf) > MAX_MESSAGE:
                    self._reply("552 5.3.4 Error: message too big")
                    self.buf.clear()
                    self.in_data = False
                    self._scanned = 0
                    self._reset()
                return False
            end, skip = end + 2, 3
        raw = bytes(self.buf[:end])
        del self.buf[:end + skip]
        self.in_data = False
        self._scanned = 0
        content = raw.replace(b"\r\n..", b"\r\n.")
        if content.startswith(b".."):
            content = content[1:]
        store_message(self.sink.directory, self.mail_from or "", list(self.rcpt_tos), content)
        self._reset()
        self._reply("250 2.0.0 Message accepted for delivery")
        return True

    def _command(self, line: bytes) -> bool:
        """Answer one command line; True when the connection is to close."""
        verb, _, arg = line.partition(b" ")
        verb = verb.upper()
        if verb == b"EHLO":
            self.greeted = True
            self._reset()
            self.out.append(b"250-smtp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                            b"250-SMTPUTF8\r\n250 SIZE %d\r\n" % MAX_MESSAGE)
        elif verb == b"HELO":
            self.greeted = True
            self._reset()
            self._reply("250 smtp-sink")
        elif verb == b"MAIL":
            m = _ADDRESS.match(arg)
            if not self.greeted:
                self._reply("503 5.5.1 Error: send HELO first")
            elif self.mail_from is not None:
                self._reply("503 5.5.1 Error: nested MAIL command")
            elif m is None or not arg.upper().startswith(b"FROM:"):
                self._reply("501 5.5.4 Syntax: MAIL FROM:<address>")
            else:
                self.mail_from = m.group(1).decode("utf-8", "replace")
                self._reply("250 2.1.0 OK")
        elif verb == b"RCPT":
            m = _ADDRESS.match(arg)
            if self.mail_from is None:
                self._reply("503 5.5.1 Error: need MAIL command")
            elif m is None or not arg.upper().startswith(b"TO:") or not m.group(1):
                self._reply("501 5.5.4 Syntax: RCPT TO:<address>")
            else:
                address = m.group(1).decode("utf-8", "replace")
                refusal = self.sink.rules.answer(address)
                if refusal is not None:
                    self._reply(refusal)
                else:
                    self.rcpt_tos.append(address)
                    self._reply("250 2.1.5 OK")
        elif verb == b"DATA":
            if not self.rcpt_tos:
                self._reply("503 5.5.1 Error: need RCPT command")
            else:
                self.in_data = True
                self._reply("354 End data with <CR><LF>.<CR><LF>")
        elif verb == b"RSET":
            self._reset()
            self._reply("250 2.0.0 OK")
        elif verb == b"NOOP":
            self._reply("250 2.0.0 OK")
        elif verb == b"VRFY":
            self._reply("252 2.0.0 Cannot VRFY user, but will accept message")
        elif verb == b"QUIT":
            self._reply("221 2.0.0 Bye")
            return True
        else:
            self._reply("500 5.5.2 Error: command not recognized")
        return False


def _bind_error(what: str, host: str, port: int, exc: OSError) -> OSError:
    if exc.errno == errno.EADDRINUSE:
        err = OSError(f"SMTP sink: {what} port {port} is already in use")
    else:
        err = OSError(f"SMTP sink: cannot listen on {host}:{port} ({what}): {exc.strerror or exc}")
    err.errno = exc.errno
    return err


class MailSink:
    def __init__(
        self,
        directory: Path,
        smtp_host: str = "127.0.0.1",
        smtp_port: int = 1025,
        web_port: int | None = 8025,
        rules: FailureRules | None = None,
    ) -> None:
        self.rules = rules if rules is not None else FailureRules.from_env()
        self.directory = Path(directory)
        self.smtp_host = smtp_host
        self.smtp_port = smtp_port
        self.web_port = web_port
        self._smtp_server: asyncio.Server | None = None
        self._sessions: set[SinkSession] = set()
        self._web: _QuietServer | None = None
        self._web_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        def factory() -> SinkSession:
            return SinkSession(self)

        loop = asyncio.get_running_loop()
        try:
            self._smtp_server = await loop.create_server(factory, self.smtp_host, self.smtp_port)
        except OSError as exc:
            raise _bind_error("SMTP", self.smtp_host, self.smtp_port, exc) from None
        self.smtp_port = self._smtp_server.sockets[0].getsockname()[1]
        if self.web_port is not None:
            try:
                await self._start_web()
            except BaseException:
                await self.stop()
                raise

    async def _start_web(self) -> None:
        assert self.web_port is not None
        try:
            sock = socket.create_server((self.smtp_host, self.web_port))
        except OSError as exc:
            raise _bind_error("web", self.smtp_host, self.web_port, exc) from None
        self.web_port = sock.getsockname()[1]
        app = create_app(self.directory)
        config = uvicorn.Config(app, log_config=None, log_level="warning", lifespan="off")
        config.access_log, config.timeout_graceful_shutdown = False, 2
        self._web = _QuietServer(config)
        self._web_task = asyncio.create_task(self._web.serve(sockets=[sock]))
        while not self._web.started:
            if self._web_task.done():
                sock.close()
                self._web_task.result()  # re-raise the startup failure
                raise RuntimeError("SMTP sink: web server exited during startup")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._web is not None and self._web_task is not None:
            self._web.should_exit = True
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._web_task
        self._web = self._web_task = None
        if self._smtp_server is not None:
            self._smtp_server.close()
            for proto in list(self._sessions):
                if proto.transport is not None:
                    proto.transport.close()
            await self._smtp_server.wait_closed()
            self._smtp_server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def _serve(args: argparse.Namespace) -> None:
    web_port = None if args.no_web else args.web_port
    rules = FailureRules.from_env()
    if args.refuse:
        rules.refuse = tuple(p.lower() for p in args.refuse)
    if args.defer:
        rules.defer = tuple(p.lower() for p in args.defer)
    if args.defer_times is not None:
        rules.defer_times = max(0, args.defer_times)
    async with MailSink(Path(args.dir), args.host, args.smtp_port, web_port, rules) as sink:
        web = f", web on http://{args.host}:{sink.web_port}/" if web_port is not None else ""
        print(f"SMTP sink: SMTP on {args.host}:{sink.smtp_port}{web}; dir {args.dir}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    print("SMTP sink: stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local SMTP sink with a web view.")
    parser.add_argument("--dir", default=".local/mail", help="where messages are stored")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--web-port", type=int, default=8025)
    parser.add_argument("--no-web", action="store_true", help="do not serve the web view")
    parser.add_argument("--refuse", action="append", metavar="PATTERN",
                        help="answer RCPT TO with 550 for matching addresses (repeatable)")
    parser.add_argument("--defer", action="append", metavar="PATTERN",
                        help="answer RCPT TO with 451 for matching addresses (repeatable)")
    parser.add_argument("--defer-times", type=int, default=None, metavar="N",
                        help="defer each address only its first N times (0: always)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except OSError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
