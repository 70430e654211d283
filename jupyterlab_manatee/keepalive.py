"""JSON calls to the API over kept-alive connections.

tornado's simple HTTP client opens a new connection for every request, which cost the job
list proxy more than half its throughput under load (829 req/s against 1959 direct at 50
clients). aiohttp pools connections per event loop; only the small JSON routes use it
(uploads and downloads stay on tornado, which streams them).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from dataclasses import dataclass

import aiohttp

#: Idle pooled connections are dropped after this long (below common server idle limits:
#: nginx 75 s, Go's http.Server none by default).
KEEPALIVE_SECONDS = 15.0
POOL_SIZE = 100

_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


@dataclass(frozen=True)
class Reply:
    status: int
    location: str
    body: bytes


class ReplyTooLarge(Exception):
    """The reply passed the caller's limit; reading stopped there."""


def session() -> aiohttp.ClientSession:
    """The running loop's pooled session (loops of finished tests are forgotten).

    The sweep of finished loops runs only when a session is made: on every call it cost
    the job list a scan per request.
    """
    loop = asyncio.get_running_loop()
    current = _sessions.get(loop)
    if current is not None and not current.closed:
        return current
    for old in [old for old in _sessions if old.is_closed()]:
        with contextlib.suppress(Exception):
            _sessions.pop(old).detach()
    connector = aiohttp.TCPConnector(
        limit=POOL_SIZE, keepalive_timeout=KEEPALIVE_SECONDS, enable_cleanup_closed=False
    )
    # trust_env False: like tornado's client, no proxy from the environment. No cookie
    # jar: the API sets none, and one session serves every user of this server.
    current = aiohttp.ClientSession(
        connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
    )
    _sessions[loop] = current
    return current


@functools.lru_cache(maxsize=8)
def _timeouts(total: float, connect: float) -> aiohttp.ClientTimeout:
    """One (immutable) timeout object per setting, not one per request."""
    return aiohttp.ClientTimeout(total=total, connect=connect)


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

    A pooled connection the server closed meanwhile fails at once; the JSON routes are
    safe to repeat, so that case is retried once on a new connection.
    """
    for attempt in range(2):
        try:
            return await _post_once(url, headers, body, connect_timeout, timeout, limit)
        except aiohttp.ServerDisconnectedError:
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


async def _post_once(
    url: str,
    headers: dict[str, str],
    body: bytes,
    connect_timeout: float,
    timeout: float,
    limit: int,
) -> Reply:
    async with session().post(
        url,
        data=body,
        headers=headers,
        allow_redirects=False,
        timeout=_timeouts(timeout, connect_timeout),
    ) as response:
        location = response.headers.get("Location", "")
        length = response.content_length
        if length is not None:
            # aiohttp's parser stops a body at its Content-Length, so one read is capped
            if length > limit:
                raise ReplyTooLarge()
            return Reply(response.status, location, await response.read())
        buf = bytearray()
        async for chunk in response.content.iter_any():
            buf += chunk
            if len(buf) > limit:
                raise ReplyTooLarge()
        return Reply(response.status, location, bytes(buf))
