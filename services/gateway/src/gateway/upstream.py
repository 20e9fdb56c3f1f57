"""A lean HTTP/1.1 keep-alive client for the services behind the gateway.

The gateway is a pass-through: its own cost per call is what it adds to every API
call. httpx over httpcore spent about 1.5 ms of CPU per forwarded call here (h11's
pure-Python parsing, anyio's layers, request and response models, a connection pool
with its own locking): most of the gateway's cost. This client speaks HTTP/1.1 over
asyncio streams, parses answers with httptools (the C parser uvicorn uses), writes a
request's head and small body in one write and keeps connections alive for less than
the services' 5 s keep-alive (uvicorn's default), so a pooled connection is dropped
here before the service closes it under a request.

Bodies are streamed both ways: a request body the caller gives as an async iterable
goes out as it comes (with its Content-Length, or chunked), and an answer over
``whole_up_to`` bytes (or of unknown length) is read by the caller chunk by chunk.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from urllib.parse import urlsplit

import httptools

# below uvicorn's 5 s keep-alive
KEEPALIVE_SECONDS = 4.0
READ_SIZE = 64 * 1024
# sent once more on a connection found closed before the service took the request
RESENDABLE = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})

Headers = Sequence[tuple[bytes, bytes]]


class UpstreamError(Exception):
    """The service could not be reached, broke the connection, or was too slow."""


class StaleConnection(UpstreamError):
    """A kept-alive connection was closed by the service before any byte of an answer:
    the request was not taken, and one without a body may be sent again."""


class _Parsed:
    """httptools' callbacks: the answer's status line, headers and body as they come."""

    __slots__ = ("chunks", "done", "head_done", "headers", "keep", "parser")

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.head_done = False
        self.done = False
        # whether the connection may carry another request: read when the head is
        # complete (llhttp forgets it once the message is)
        self.keep = False
        self.parser: httptools.HttpResponseParser | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.head_done = True
        self.keep = self.parser is not None and self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class _Conn:
    __slots__ = ("reader", "used", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.used = reader, writer, 0.0

    def close(self) -> None:
        self.writer.close()


class Answer:
    """A service's answer: status and headers (names lower-case); ``body`` when it was
    read whole, else read it with :meth:`stream` (which hands the connection back)."""

    __slots__ = ("_conn", "_parsed", "_parser", "_pool", "body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes | None,
                 pool: Upstream | None = None, conn: _Conn | None = None,
                 parsed: _Parsed | None = None, parser: httptools.HttpResponseParser | None = None
                 ) -> None:
        self.status, self.headers, self.body = status, headers, body
        self._pool, self._conn, self._parsed, self._parser = pool, conn, parsed, parser

    def header(self, name: bytes) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    async def stream(self) -> AsyncIterator[bytes]:
        """The body chunk by chunk (decoded when the service sent it chunked)."""
        if self.body is not None:
            if self.body:
                yield self.body
            return
        pool, conn, parsed, parser = self._pool, self._conn, self._parsed, self._parser
        assert pool is not None and conn is not None and parsed is not None
        assert parser is not None
        self._conn = None
        ok = False
        try:
            while True:
                if parsed.chunks:
                    chunks, parsed.chunks = parsed.chunks, []
                    for chunk in chunks:
                        yield chunk
                if parsed.done:
                    ok = True
                    return
                await pool.read_into(conn, parser, pool.read_timeout)
        finally:
            pool.release(conn, ok and parsed.keep)

    async def aclose(self) -> None:
        """Drops an answer not read to its end (its connection is closed)."""
        if self._conn is not None and self._pool is not None:
            self._pool.release(self._conn, False)
            self._conn = None


class Upstream:
    """One service's keep-alive pool (at most ``max_connections`` calls at once)."""

    def __init__(self, base_url: str, *, connect_timeout: float, read_timeout: float,
                 max_connections: int, keepalive: float = KEEPALIVE_SECONDS) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"an upstream is a plain http:// address, not {base_url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.prefix = parts.path.rstrip("/").encode()
        self.host_header = parts.netloc.encode()
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.keepalive = keepalive
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(max_connections)

    # -- connections -----------------------------------------------------------------

    def _pooled(self) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if (now - conn.used < self.keepalive and not conn.writer.is_closing()
                    and not conn.reader.at_eof()):
                return conn
            conn.close()
        return None

    async def _connect(self) -> _Conn:
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"cannot connect: {type(exc).__name__}") from None
        return _Conn(reader, writer)

    def release(self, conn: _Conn, keep: bool) -> None:
        if keep and not conn.writer.is_closing():
            conn.used = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
        self._slots.release()

    async def read_into(self, conn: _Conn, parser: httptools.HttpResponseParser,
                        timeout: float) -> int:
        """One read off the connection into the parser; the bytes read."""
        try:
            async with asyncio.timeout(timeout):
                data = await conn.reader.read(READ_SIZE)
        except TimeoutError:
            raise UpstreamError("read timed out") from None
        except OSError as exc:
            raise UpstreamError(f"read failed: {type(exc).__name__}") from None
        if not data:
            raise UpstreamError("the service closed the connection mid-answer")
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise UpstreamError(f"unreadable answer: {exc}") from None
        return len(data)

    async def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    # -- a call ----------------------------------------------------------------------

    def _head(self, method: str, target: bytes, headers: Headers, framing: bytes) -> bytes:
        lines = [method.encode(), b" ", self.prefix, target, b" HTTP/1.1\r\nhost: ",
                 self.host_header, b"\r\n"]
        for name, value in headers:
            lines += (name, b": ", value, b"\r\n")
        lines += (framing, b"\r\n")
        return b"".join(lines)

    async def request(self, method: str, target: bytes, headers: Headers,
                      body: bytes | AsyncIterable[bytes] | None = None, *,
                      length: int | None = None, whole_up_to: int = 64 * 1024) -> Answer:
        """Sends ``method target`` (target: the path after the service's base, with its
        query) with ``headers`` (no Host, Content-Length or Transfer-Encoding: those are
        set here). ``body``: bytes, or an async iterable streamed out (``length``: its
        declared size, else chunked). The answer is read whole when its declared length
        is at most ``whole_up_to``. UpstreamError when the service cannot be had.

        A kept-alive connection the service closed before taking the request is
        replaced and the request sent once more, when that is safe: a method that
        changes nothing, or the same thing each time, and a body that can be sent
        again (not one streamed through)."""
        try:
            return await self._once(method, target, headers, body, length, whole_up_to)
        except StaleConnection:
            if method not in RESENDABLE or not (body is None or isinstance(body, bytes)):
                raise
            return await self._once(method, target, headers, body, length, whole_up_to)

    async def _once(self, method: str, target: bytes, headers: Headers,
                    body: bytes | AsyncIterable[bytes] | None, length: int | None,
                    whole_up_to: int) -> Answer:
        await self._slots.acquire()
        conn = self._pooled()
        reused = conn is not None
        try:
            if conn is None:
                conn = await self._connect()
        except BaseException:
            self._slots.release()
            raise
        try:
            answer = await self._exchange(conn, reused, method, target, headers, body,
                                          length, whole_up_to)
        except BaseException:
            self.release(conn, False)
            raise
        return answer

    async def _exchange(self, conn: _Conn, reused: bool, method: str, target: bytes,
                        headers: Headers, body: bytes | AsyncIterable[bytes] | None,
                        length: int | None, whole_up_to: int) -> Answer:
        writer = conn.writer
        try:
            if body is None:
                framing = b"content-length: 0\r\n" if method in ("POST", "PUT", "PATCH") else b""
                writer.write(self._head(method, target, headers, framing))
            elif isinstance(body, bytes):
                writer.write(self._head(method, target, headers,
                                        b"content-length: %d\r\n" % len(body)) + body)
            else:
                chunked = length is None
                framing = (b"transfer-encoding: chunked\r\n" if length is None
                           else b"content-length: %d\r\n" % length)
                writer.write(self._head(method, target, headers, framing))
                async for chunk in body:
                    if chunk:
                        writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                        await writer.drain()
                if chunked:
                    writer.write(b"0\r\n\r\n")
            await writer.drain()
        except OSError as exc:
            if reused:
                raise StaleConnection("the kept-alive connection was closed") from None
            raise UpstreamError(f"write failed: {type(exc).__name__}") from None
        parsed = _Parsed()
        parser = parsed.parser = httptools.HttpResponseParser(parsed)
        got = 0
        try:
            async with asyncio.timeout(self.read_timeout):
                while not parsed.head_done:
                    got += await self._read_head(conn, parser, reused and got == 0)
                status = parser.get_status_code()
                if method == "HEAD":
                    # no body follows, but the parser would wait for the one the headers
                    # describe: the connection is not reused
                    self.release(conn, False)
                    return Answer(status, parsed.headers, b"")
                declared = next((v for k, v in parsed.headers if k == b"content-length"), None)
                whole = parsed.done or (declared is not None and declared.isdigit()
                                        and int(declared) <= whole_up_to)
                while whole and not parsed.done:
                    await self.read_into(conn, parser, self.read_timeout)
        except TimeoutError:
            raise UpstreamError("read timed out") from None
        if whole:
            keep = parsed.keep
            body_bytes = b"".join(parsed.chunks)
            self.release(conn, keep)
            return Answer(status, parsed.headers, body_bytes)
        return Answer(status, parsed.headers, None, self, conn, parsed, parser)

    async def _read_head(self, conn: _Conn, parser: httptools.HttpResponseParser,
                         first_on_reused: bool) -> int:
        try:
            data = await conn.reader.read(READ_SIZE)
        except OSError as exc:
            if first_on_reused:
                raise StaleConnection("the kept-alive connection was closed") from None
            raise UpstreamError(f"read failed: {type(exc).__name__}") from None
        if not data:
            if first_on_reused:
                raise StaleConnection("the kept-alive connection was closed")
            raise UpstreamError("the service closed the connection mid-answer")
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise UpstreamError(f"unreadable answer: {exc}") from None
        return len(data)
