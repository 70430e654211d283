"""JSON calls to the API over kept-alive connections: a small HTTP/1.1 client.

tornado's simple client opens a new connection for every request (the job list proxy lost
more than half its throughput to that); aiohttp pooled them but cost ~100-140 µs of the
server's only event-loop thread per call, a sixth of the list proxy's CPU. This client
parses replies with httptools (llhttp, the parser of Node.js and uvicorn) and costs
~35 µs. It serves only the small JSON routes: uploads and downloads stay on tornado, which
streams them.

What it keeps from a general client: Content-Length, chunked and close-delimited replies;
gzip/deflate replies unpacked under the same cap; a cap that stops reading as soon as the
reply passes it; connect and total timeouts; TLS; at most :data:`POOL_SIZE` connections
at once; idle connections dropped after :data:`KEEPALIVE_SECONDS`; a pooled connection the
server closed meanwhile retried once on a new one (the JSON routes are safe to repeat).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ssl
import zlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

#: Idle pooled connections are dropped after this long (below common server idle limits:
#: nginx 75 s, Go's http.Server none by default).
KEEPALIVE_SECONDS = 15.0
#: Connections open at once, per server process; further calls wait for one.
POOL_SIZE = 100


@dataclass(frozen=True)
class Reply:
    status: int
    location: str
    body: bytes


class ReplyTooLarge(Exception):
    """The reply passed the caller's limit; reading stopped there."""


class ConnectTimeout(Exception):
    """No connection within the connect timeout."""


class Unreachable(Exception):
    """The connection could not be made (refused, no route, name not found, TLS)."""


class Broken(Exception):
    """The connection failed after the request went out, or the reply was not HTTP."""


class _Stale(Exception):
    """A pooled connection closed before any byte of the reply: safe to retry."""


@dataclass(frozen=True)
class _Target:
    """Where a URL's requests go, and the start of every request to it."""

    origin: tuple[str, str, int]
    head: bytes  # request line and Host header


@functools.lru_cache(maxsize=64)
def _target(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unreachable(f"{parts.scheme or 'no'} scheme or no host in the API URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        shown += f":{parts.port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = f"POST {path} HTTP/1.1\r\nHost: {shown}\r\n".encode("ascii")
    return _Target((parts.scheme, host, port), head)


@functools.lru_cache(maxsize=8)
def _header_block(items: tuple[tuple[str, str], ...]) -> bytes:
    lines = []
    for name, value in items:
        if any(c in name + value for c in "\r\n\0") or not name:
            raise Broken(f"the request header {name!r} holds a line break")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


class _Connection(asyncio.Protocol):
    """One connection; one request at a time. The reply is parsed as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Reply] | None = None
        self._limit = 0
        self._reset()

    def _reset(self) -> None:
        self._got_bytes = False
        self._done = False
        self._keep_alive = False
        self._headers_done = False
        self._framed = False  # Content-Length or chunked: the reply ends by itself
        self._status = 0
        self._location = ""
        self._encoding = ""
        self._inflate: zlib._Decompress | None = None  # type: ignore[name-defined]
        self._body = bytearray()

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the connection is out of step
            return
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as e:  # raised by a callback below
            cause = e.__context__
            if isinstance(cause, zlib.error):
                cause = Broken("the reply's gzip/deflate body is corrupt")
            self._fail(cause if isinstance(cause, (ReplyTooLarge, Broken)) else Broken(str(e)))
        except httptools.HttpParserUpgrade:
            self._fail(Broken("the API switched protocols"))
        except httptools.HttpParserError as e:
            self._fail(Broken(f"the reply is not HTTP/1.1 ({e})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and not self._framed:  # a body that ends with the connection
            self._complete()
        elif not self._got_bytes and self.idle_since:
            waiter.set_exception(_Stale())
        else:
            reason = str(exc) if exc else "the API closed the connection mid-reply"
            waiter.set_exception(Broken(reason))

    # --- httptools callbacks (what they raise stops the parser) ------------------------

    def on_message_begin(self) -> None:
        if self._done:
            raise Broken("the API sent a second reply to one request")

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.lower()
        if key == b"content-length" or key == b"transfer-encoding":
            self._framed = True
            if key == b"content-length" and value.strip().isdigit():
                if int(value) > self._limit:
                    raise ReplyTooLarge()
        elif key == b"location":
            self._location = value.decode("latin-1")
        elif key == b"content-encoding":
            self._encoding = value.decode("latin-1").strip().lower()

    def on_headers_complete(self) -> None:
        self._headers_done = True
        self._status = self._parser.get_status_code()
        if self._status in (204, 304):
            self._framed = True
        if self._encoding in ("gzip", "x-gzip", "deflate"):
            # wbits 47: gzip or zlib header, told from the bytes
            self._inflate = zlib.decompressobj(47)

    def on_body(self, chunk: bytes) -> None:
        room = self._limit - len(self._body)
        if self._inflate is not None:
            chunk = self._inflate.decompress(chunk, room + 1)  # stops one byte past the cap
        self._body += chunk
        if len(self._body) > self._limit:
            raise ReplyTooLarge()

    def on_message_complete(self) -> None:
        self._framed = True
        self._keep_alive = self._parser.should_keep_alive()
        self._complete()

    # --- the caller's side -----------------------------------------------------------

    def send(self, request: bytes, limit: int) -> asyncio.Future[Reply]:
        assert self.transport is not None
        self._reset()
        self._limit = limit
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._waiter

    def reusable(self) -> bool:
        return not self.closed and self._keep_alive

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _complete(self) -> None:
        waiter = self._waiter
        self._done = True
        if waiter is None or waiter.done():
            return
        body = bytes(self._body)
        if self._inflate is not None and not self._inflate.eof:
            waiter.set_exception(Broken("the reply's gzip/deflate body is cut short"))
            return
        waiter.set_result(Reply(self._status, self._location, body))

    def _fail(self, error: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self.close()


@dataclass
class _Pool:
    """One event loop's idle connections per origin, and the bound on open ones."""

    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(POOL_SIZE))
    idle: dict[tuple[str, str, int], collections.deque[_Connection]] = field(
        default_factory=lambda: collections.defaultdict(collections.deque)
    )


_pools: dict[asyncio.AbstractEventLoop, _Pool] = {}


def _pool(loop: asyncio.AbstractEventLoop) -> _Pool:
    """The running loop's pool (pools of finished loops, as tests leave, are dropped)."""
    pool = _pools.get(loop)
    if pool is None:
        for old in [old for old in _pools if old.is_closed()]:
            del _pools[old]
        pool = _pools[loop] = _Pool()
    return pool


async def post(
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    connect_timeout: float,
    timeout: float,
    limit: int,
) -> Reply:
    """POST ``body``; the reply's status, Location and body (at most ``limit`` bytes).

    Raises :class:`ReplyTooLarge`, :class:`ConnectTimeout`, :class:`Unreachable`,
    :class:`Broken`, or :class:`TimeoutError` when the whole call took over ``timeout``.
    """
    target = _target(url)
    request = (
        target.head
        + _header_block(tuple(headers.items()))
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )
    loop = asyncio.get_running_loop()
    pool = _pool(loop)
    deadline = loop.time() + timeout
    async with pool.slots:
        for _attempt in range(2):
            connection = _idle_connection(pool, target.origin, loop.time())
            if connection is None:
                connection = await _connect(loop, target.origin, connect_timeout, deadline)
            try:
                reply = await _exchange(loop, connection, request, limit, deadline)
            except _Stale:
                continue  # the server closed it while it sat in the pool
            except BaseException:
                connection.close()
                raise
            if connection.reusable():
                connection.idle_since = loop.time()
                pool.idle[target.origin].append(connection)
            else:
                connection.close()
            return reply
        raise Broken("the API closed two connections in a row without answering")


def _idle_connection(pool: _Pool, origin: tuple[str, str, int], now: float) -> _Connection | None:
    idle = pool.idle.get(origin)
    while idle:
        connection = idle.pop()  # the most recently used: the least likely to be stale
        if not connection.closed and now - connection.idle_since < KEEPALIVE_SECONDS:
            return connection
        connection.close()
    return None


@functools.lru_cache(maxsize=1)
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


async def _connect(
    loop: asyncio.AbstractEventLoop,
    origin: tuple[str, str, int],
    connect_timeout: float,
    deadline: float,
) -> _Connection:
    scheme, host, port = origin
    tls = _tls() if scheme == "https" else None
    wait = min(connect_timeout, max(0.0, deadline - loop.time()))
    try:
        _, connection = await asyncio.wait_for(
            loop.create_connection(
                _Connection, host, port, ssl=tls, server_hostname=host if tls else None
            ),
            wait,
        )
    except asyncio.TimeoutError:
        if wait < connect_timeout:
            raise TimeoutError() from None
        raise ConnectTimeout() from None
    except ssl.SSLError as e:
        raise Unreachable(f"TLS failed: {e.reason or e}") from None
    except OSError as e:
        raise Unreachable(e.strerror or str(e) or type(e).__name__) from None
    return connection


async def _exchange(
    loop: asyncio.AbstractEventLoop,
    connection: _Connection,
    request: bytes,
    limit: int,
    deadline: float,
) -> Reply:
    waiter = connection.send(request, limit)

    def time_out() -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError())

    timer = loop.call_at(deadline, time_out)
    try:
        return await waiter
    finally:
        timer.cancel()
