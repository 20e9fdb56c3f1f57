"""The gateway's lean HTTP/1.1 client against a real socket server scripted per test:
connections kept alive and reused, bodies streamed both ways (with a length or
chunked), a connection the service closed while idle, refused connections, timeouts,
and "connection: close"."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httptools
import pytest

from gateway.upstream import Upstream, UpstreamError
from shared.devstack.processes import free_port


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


class _Request:
    """httptools' callbacks for a request the server reads."""

    def __init__(self) -> None:
        self.url, self.body, self.done = b"", b"", False
        self.headers: dict[str, str] = {}

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True


@dataclass
class Server:
    """Answers each request with ``answer(seen) -> bytes`` (the raw answer); ``after``
    "close" closes the connection once the answer is written."""

    answer: Callable[[Seen], bytes]
    after: str = "keep"
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                request = await self._read(reader)
                if request is None:
                    return
                self.seen.append(request)
                writer.write(self.answer(request))
                await writer.drain()
                if self.after == "close":
                    return
        finally:
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> Seen | None:
        got = _Request()
        parser = httptools.HttpRequestParser(got)
        while not got.done:
            data = await reader.read(65536)
            if not data:
                return None
            parser.feed_data(data)
        return Seen(parser.get_method().decode(), got.url.decode(), got.headers, got.body)

    async def __aenter__(self) -> Server:
        self.port = free_port()
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()


def ok(body: bytes = b"{}", *extra: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in extra)
    return (f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}"
            f"\r\n{head}\r\n").encode() + body


def chunked(*chunks: bytes) -> bytes:
    out = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    for c in chunks:
        out += b"%x\r\n%b\r\n" % (len(c), c)
    return out + b"0\r\n\r\n"


def pool(server: Server, **kw: float) -> Upstream:
    return Upstream(f"http://127.0.0.1:{server.port}/base", connect_timeout=kw.get("c", 2.0),
                    read_timeout=kw.get("r", 5.0), max_connections=int(kw.get("n", 10)),
                    keepalive=kw.get("keepalive", 4.0))


async def test_calls_share_one_kept_alive_connection_and_pass_path_headers_and_body() -> None:
    async with Server(lambda s: ok(b'{"n": %d}' % len(s.body))) as server:
        up = pool(server)
        first = await up.request("GET", b"/v1/things?limit=5", [(b"x-request-id", b"abc")])
        second = await up.request("POST", b"/v1/things", [], b'{"a": 1}')
        assert (first.status, first.body, second.body) == (200, b'{"n": 0}', b'{"n": 8}')
        assert first.header(b"content-type") == b"application/json"
        assert server.connections == 1
        assert [s.target for s in server.seen] == ["/base/v1/things?limit=5", "/base/v1/things"]
        assert server.seen[0].headers["x-request-id"] == "abc"
        assert server.seen[0].headers["host"] == f"127.0.0.1:{server.port}"
        assert server.seen[1].headers["content-length"] == "8"
        await up.close()


async def test_a_large_or_chunked_answer_is_streamed_and_its_connection_then_reused() -> None:
    big = b"x" * 200_000
    answers = iter([ok(big), chunked(b"ab", b"cd" * 1000), ok()])
    async with Server(lambda _: next(answers)) as server:
        up = pool(server)
        a = await up.request("GET", b"/big", [], whole_up_to=1024)
        assert a.body is None  # over the limit: read by the caller
        assert b"".join([c async for c in a.stream()]) == big
        b = await up.request("GET", b"/chunked", [], whole_up_to=1 << 30)
        assert b"".join([c async for c in b.stream()]) == b"ab" + b"cd" * 1000
        c = await up.request("GET", b"/small", [])
        assert c.body == b"{}"
        assert server.connections == 1  # each answer read to its end gave it back
        await up.close()


async def test_a_head_answer_has_no_body_and_is_not_waited_for() -> None:
    async with Server(lambda _: ok(b"x" * 10)[:-10]) as server:  # the length, no body
        up = pool(server, r=2.0)
        answer = await up.request("HEAD", b"/", [])
        assert (answer.status, answer.body, answer.header(b"content-length")) == (
            200, b"", b"10")
        await up.close()


async def test_a_streamed_request_body_goes_with_its_length_or_chunked() -> None:
    async def parts() -> AsyncIterator[bytes]:
        for p in (b"one,", b"", b"two,", b"three"):
            yield p

    async with Server(lambda s: ok(s.body)) as server:
        up = pool(server)
        sized = await up.request("PUT", b"/sized", [], parts(), length=13)
        unsized = await up.request("PUT", b"/unsized", [], parts())
        assert sized.body == unsized.body == b"one,two,three"
        assert server.seen[0].headers["content-length"] == "13"
        assert server.seen[1].headers["transfer-encoding"] == "chunked"
        await up.close()


async def test_a_connection_the_service_closed_while_idle_is_stale_then_replaced() -> None:
    async with Server(lambda _: ok(), after="close") as server:
        up = pool(server)
        assert (await up.request("GET", b"/1", [])).status == 200
        await asyncio.sleep(0)  # (the server's close reaches the pooled connection later)
        # the server closed it: either seen as closed and dropped, or found stale and
        # the GET sent again on a new connection, by the pool itself
        assert (await up.request("GET", b"/2", [])).status == 200
        assert len(server.seen) == 2 and server.connections == 2
        await up.close()


async def test_connection_close_and_expired_idle_connections_are_not_reused() -> None:
    async with Server(lambda _: ok(b"{}", "connection: close")) as server:
        up = pool(server)
        for _ in range(3):
            assert (await up.request("GET", b"/", [])).body == b"{}"
        assert server.connections == 3
    async with Server(lambda _: ok()) as server:
        up = pool(server, keepalive=0.0)
        for _ in range(3):
            await up.request("GET", b"/", [])
        assert server.connections == 3
        await up.close()


async def test_a_service_that_is_down_or_too_slow_is_an_upstream_error() -> None:
    down = Upstream(f"http://127.0.0.1:{free_port()}", connect_timeout=2, read_timeout=2,
                    max_connections=1)
    with pytest.raises(UpstreamError, match="cannot connect"):
        await down.request("GET", b"/", [])
    with pytest.raises(UpstreamError, match="cannot connect"):  # its slot was given back
        await down.request("GET", b"/", [])

    silent = asyncio.Event()

    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await silent.wait()
        writer.close()

    port = free_port()
    server = await asyncio.start_server(never, "127.0.0.1", port)
    slow = Upstream(f"http://127.0.0.1:{port}", connect_timeout=2, read_timeout=0.2,
                    max_connections=1)
    for _ in range(2):  # the timed-out call gave its slot back
        with pytest.raises(UpstreamError, match="timed out"):
            await slow.request("GET", b"/", [])
    silent.set()
    server.close()


async def test_an_unreadable_answer_is_an_upstream_error() -> None:
    async with Server(lambda _: b"SMTP ready\r\n\r\n") as server:
        with pytest.raises(UpstreamError, match="unreadable"):
            await pool(server).request("GET", b"/", [])


def test_only_plain_http_addresses_are_taken() -> None:
    with pytest.raises(ValueError, match="plain http"):
        Upstream("https://example.org", connect_timeout=1, read_timeout=1, max_connections=1)
