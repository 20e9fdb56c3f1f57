"""The gateway's keep-alive pool to one service, on aiohttp's client.

The gateway is a pass-through: its own cost per call is what it adds to every API
call, so this is a thin layer over ``aiohttp.ClientSession`` (its C HTTP parser, its
pooled ``TCPConnector``) that passes the bytes of paths, headers and bodies as they
came: no cookie jar (a service's Set-Cookie is never kept for someone else), no
redirects, no automatic headers, no decompression. Connections are kept alive for
less than the services' 5 s keep-alive (uvicorn's default), so a pooled connection is
dropped here before the service closes it under a request; should the service close
one first anyway, aiohttp sends a request of an idempotent method once more on a new
connection (RFC 9112 9.3.1.1), and never a POST or PATCH.

Bodies are streamed both ways: a request body the caller gives as an async iterable
goes out as it comes (with its Content-Length, or chunked), and an answer over
``whole_up_to`` bytes (or of unknown length) is read by the caller chunk by chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence

import aiohttp
from multidict import CIMultiDict
from yarl import URL

# below uvicorn's 5 s keep-alive
KEEPALIVE_SECONDS = 4.0

Headers = Sequence[tuple[bytes, bytes]]
# what aiohttp would add on its own: the caller's headers are sent as they are
NO_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


class UpstreamError(Exception):
    """The service could not be reached, broke the connection, or was too slow."""


class StaleConnection(UpstreamError):
    """A kept-alive connection was closed by the service before any byte of an answer.
    (aiohttp itself sends an idempotent request again in that case; kept for callers
    that name it.)"""


def _error(exc: BaseException) -> UpstreamError:
    """What went wrong, in a few words (never the URL: it may hold a query)."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        return UpstreamError(f"cannot connect: {type(exc).__name__}")
    if isinstance(exc, TimeoutError):
        return UpstreamError("read timed out")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return UpstreamError("the service closed the connection mid-answer")
    if isinstance(exc, aiohttp.ClientResponseError):
        return UpstreamError(f"unreadable answer: {exc.message}")
    return UpstreamError(f"call failed: {type(exc).__name__}")


async def _relay(body: AsyncIterable[bytes], failed: list[BaseException]
                 ) -> AsyncIterator[bytes]:
    """The caller's body, its own failure (the body cap's 413, a client gone) kept:
    aiohttp would report it as a broken connection."""
    try:
        async for chunk in body:
            yield chunk
    except BaseException as exc:
        failed.append(exc)
        raise


class Answer:
    """A service's answer: status and headers (names lower-case); ``body`` when it was
    read whole, else read it with :meth:`stream` (which hands the connection back)."""

    __slots__ = ("_resp", "body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes | None,
                 resp: aiohttp.ClientResponse | None = None) -> None:
        self.status, self.headers, self.body, self._resp = status, headers, body, resp

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
        resp, self._resp = self._resp, None
        assert resp is not None
        try:
            async for chunk in resp.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _error(exc) from None
        finally:
            resp.release()  # back to the pool when read to its end, else closed

    async def aclose(self) -> None:
        """Drops an answer not read to its end (its connection is closed)."""
        if self._resp is not None:
            self._resp.close()
            self._resp = None


class Upstream:
    """One service's keep-alive pool (at most ``max_connections`` calls at once)."""

    def __init__(self, base_url: str, *, connect_timeout: float, read_timeout: float,
                 max_connections: int, keepalive: float = KEEPALIVE_SECONDS) -> None:
        base = URL(base_url)
        if base.scheme != "http" or not base.host:
            raise ValueError(f"an upstream is a plain http:// address, not {base_url!r}")
        self.base = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout,
                                             sock_read=read_timeout)
        self.max_connections, self.keepalive = max_connections, keepalive
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # made on first use: a session belongs to the running event loop
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, limit_per_host=self.max_connections,
                keepalive_timeout=self.keepalive, use_dns_cache=True)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self.timeout,
                cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                skip_auto_headers=NO_AUTO_HEADERS)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, target: bytes, headers: Headers,
                      body: bytes | AsyncIterable[bytes] | None = None, *,
                      length: int | None = None, whole_up_to: int = 64 * 1024) -> Answer:
        """Sends ``method target`` (target: the path after the service's base, with its
        query) with ``headers`` (no Host, Content-Length or Transfer-Encoding: those are
        set here). ``body``: bytes, or an async iterable streamed out (``length``: its
        declared size, else chunked). The answer is read whole when its declared length
        is at most ``whole_up_to``. UpstreamError when the service cannot be had."""
        sent = CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers)
        failed: list[BaseException] = []
        data: bytes | AsyncIterator[bytes] | None = None
        if isinstance(body, bytes) or body is None:
            data = body
        else:
            data = _relay(body, failed)
            if length is not None:
                sent["Content-Length"] = str(length)
        url = URL(self.base + target.decode("latin-1"), encoded=True)
        try:
            resp = await self._client().request(method, url, headers=sent, data=data,
                                                allow_redirects=False)
        except (aiohttp.ClientError, TimeoutError) as exc:
            if failed:
                raise failed[0] from None
            raise _error(exc) from None
        out = [(k.lower(), v) for k, v in resp.raw_headers]
        if method == "HEAD":
            resp.release()
            return Answer(resp.status, out, b"")
        declared = resp.content_length
        if resp.content.is_eof() or (declared is not None and declared <= whole_up_to):
            try:
                content = await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                resp.close()
                raise _error(exc) from None
            return Answer(resp.status, out, content)
        return Answer(resp.status, out, None, resp)
