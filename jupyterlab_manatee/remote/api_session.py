"""The API's JSON calls and its /health probe over pooled, kept-alive connections, on
aiohttp.

aiohttp rather than httpx: its C parser (llhttp) refuses a header field past 8190 bytes and
a reply with over 128 headers, it inflates gzip/deflate in bounded steps as the body is
read (3.13.3+; httpx inflates each network read whole), it skips 1xx replies, and it has a
total timeout (httpx has none). Uploads and downloads stay on tornado, which streams them.

One :class:`ApiSession` per server (the manager's), closed when the server stops. What is
configured here: connect and total timeouts, TLS verified against the system's CAs (and
``SSL_CERT_FILE``/``SSL_CERT_DIR``), a cap on the reply body checked while it streams
(inflated bytes counted), no redirects (the caller decides), no proxy from the environment
and no cookies; a pooled connection the server closed before answering is tried once more
on a new one (the JSON routes are safe to repeat).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

#: Idle pooled connections are dropped after this long (below common server idle limits:
#: nginx 75 s, Go's http.Server none by default).
KEEPALIVE_SECONDS = 15.0
#: Connections open at once, per server; further calls wait for one.
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


#: How a refused connection ends its reason (the API client adds what to do about it).
REFUSED = "(connection refused)"


def connect_failure(error: OSError, host: str, port: int | None) -> str:
    """Why no connection could be made, in words: asyncio's "Connect call failed
    ('127.0.0.1', 55295)" says neither that nothing listens nor what to do."""
    where = f"{host}:{port}" if port else host
    text = str(error)
    if isinstance(error, ConnectionRefusedError) or "Connect call failed" in text:
        return f"nothing is listening at {where} {REFUSED}"
    if isinstance(error, socket.gaierror):
        return f"the host name {host} is not known ({error.strerror or text})"
    return getattr(error, "strerror", None) or text or type(error).__name__


class Broken(Exception):
    """The connection failed after the request went out, or the reply was not HTTP."""


async def _note_reuse(_session: Any, context: Any, _params: Any) -> None:
    context.trace_request_ctx["reused"] = True


_TRACE = aiohttp.TraceConfig()
_TRACE.on_connection_reuseconn.append(_note_reuse)
_TRACE.freeze()


class ApiSession:
    """A pool of connections to the API, made in the running loop on first use."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float, float], aiohttp.ClientTimeout] = {}

    async def _current(self) -> aiohttp.ClientSession:
        session = self._session
        if session is not None and not session.closed:
            return session
        # made now, not at import (SSL_CERT_FILE set before the first call counts), and
        # off the loop: loading the system's CAs takes tens of milliseconds
        tls = await asyncio.get_running_loop().run_in_executor(None, ssl.create_default_context)
        session = self._session
        if session is None or session.closed:  # no other call made it meanwhile
            connector = aiohttp.TCPConnector(
                limit=POOL_SIZE, keepalive_timeout=KEEPALIVE_SECONDS, ssl=tls
            )
            # trust_env False: like tornado's client, no proxy from the environment. No
            # cookie jar: the API sets none, and one session serves every user of this server.
            session = self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                trace_configs=[_TRACE],
            )
        return session

    def _timeout(self, total: float, connect: float) -> aiohttp.ClientTimeout:
        """One (immutable) timeout object per setting, not one per request."""
        key = (total, connect)
        if key not in self._timeouts:
            self._timeouts[key] = aiohttp.ClientTimeout(total=total, connect=connect)
        return self._timeouts[key]

    async def close(self) -> None:
        """Close every pooled connection (at server stop); a later call opens new ones."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def post(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        *,
        connect_timeout: float,
        timeout: float,
        limit: int,
    ) -> Reply:
        """POST ``body``; as :meth:`request`."""
        return await self.request(
            "POST",
            url,
            headers,
            body,
            connect_timeout=connect_timeout,
            timeout=timeout,
            limit=limit,
        )

    async def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        *,
        connect_timeout: float,
        timeout: float,
        limit: int,
    ) -> Reply:
        """One call; the reply's status, Location and body (at most ``limit`` bytes). Only
        for calls safe to repeat (the JSON routes, GET /health): one sent on a pooled
        connection the server had closed is sent again on a new one.

        Raises :class:`ReplyTooLarge`, :class:`ConnectTimeout`, :class:`Unreachable`,
        :class:`Broken`, or :class:`TimeoutError` when the whole call took over ``timeout``.
        """
        for attempt in range(2):
            trace: dict[str, bool] = {}
            try:
                return await self._once(
                    method,
                    url,
                    headers,
                    body,
                    self._timeout(timeout, connect_timeout),
                    limit,
                    trace,
                )
            except aiohttp.ConnectionTimeoutError:
                raise ConnectTimeout() from None
            except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
                raise TimeoutError() from None
            except aiohttp.ClientConnectorCertificateError as e:
                cert = e.certificate_error
                detail = getattr(cert, "verify_message", "") or str(cert)
                raise Unreachable(f"TLS failed: certificate verify failed ({detail})") from None
            except aiohttp.ClientConnectorError as e:
                raise Unreachable(connect_failure(e.os_error, e.host, e.port)) from None
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as e:
                if trace.get("reused") and attempt == 0:
                    continue  # the server closed it while it sat in the pool
                if isinstance(e, aiohttp.ServerDisconnectedError):
                    raise Broken("the API closed the connection without a whole reply") from None
                raise Broken(getattr(e, "strerror", None) or str(e)) from None
            except aiohttp.ClientResponseError as e:  # not HTTP, or a header past the cap
                raise Broken(f"the reply is not valid HTTP ({_first_words(e.message)})") from None
            except aiohttp.ClientPayloadError as e:  # cut short, bad chunks, bad gzip
                raise Broken(f"the reply's body is broken ({_first_words(str(e))})") from None
            except aiohttp.ClientError as e:
                raise Broken(str(e) or type(e).__name__) from None
        raise Broken("the API closed two connections in a row without answering")

    async def _once(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout: aiohttp.ClientTimeout,
        limit: int,
        trace: dict[str, bool],
    ) -> Reply:
        session = await self._current()
        async with session.request(
            method,
            URL(url, encoded=True),
            data=body,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            trace_request_ctx=trace,
        ) as response:
            if response.content_length is not None and response.content_length > limit:
                response.close()  # never read, and the connection is not reused
                raise ReplyTooLarge()
            data = bytearray()
            # inflated bytes, as they come: a gzip bomb stops at the cap too
            async for chunk in response.content.iter_any():
                data += chunk
                if len(data) > limit:
                    response.close()
                    raise ReplyTooLarge()
            return Reply(response.status, response.headers.get("Location", ""), bytes(data))


def _first_words(message: str) -> str:
    """An aiohttp message without the bytes it quotes from the reply (``...: b'...'``)."""
    return message.split(": b'", 1)[0].split(': b"', 1)[0][:200]
