"""The API's JSON calls on the pooled client (aiohttp, see jupyterlab_manatee.remote.api_session):
connections reused and dropped when they should be, replies capped while they stream,
timeouts, TLS, 1xx replies, and hostile servers, first against the session, then through
a real Jupyter server where the user meets them."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import socket
import ssl
import struct
import time
import zlib
from pathlib import Path

import pytest
from tornado import httpserver, web

from jupyterlab_manatee.errors import ApiUnavailable
from jupyterlab_manatee.remote import api_session
from jupyterlab_manatee.remote.api_client import ManateeApiClient
from jupyterlab_manatee.remote.api_session import ApiSession
from tests.conftest import call
from tests.fault_server import closed_port_url
from tests.self_signed import self_signed

MIB = 1024 * 1024
JOB_UUID = "00000000-1111-2222-3333-444444444444"


def job(job_id: int) -> dict:
    return {
        "id": job_id,
        "uuid": JOB_UUID,
        "creator": "alice",
        # running: a Finished (5) job's output is scanned in the background, which would
        # be another request to the stand-in APIs that count them
        "job_status": 4,
        "jupyter_file_name": "nb.ipynb",
        "created_at": "2026-01-01 00:00:00",
        "updated_at": "2026-01-01 00:00:00",
    }


def job_list(job_id: int = 1) -> bytes:
    return json.dumps({"code": 0, "msg": "Success", "jobs": [job(job_id)], "total": 1}).encode()


REPLY = job_list()


@pytest.fixture
def session(jp_asyncio_loop):
    """A pool of its own, closed after the test."""
    pool = ApiSession()
    yield pool
    jp_asyncio_loop.run_until_complete(pool.close())


# --- the pool, against a tornado stand-in ---------------------------------------------


class _Query(web.RequestHandler):
    def initialize(self, peers: list[tuple[str, int]]) -> None:
        self.peers = peers

    def check_xsrf_cookie(self) -> None:  # an API, not a browser form
        pass

    def post(self) -> None:
        self.peers.append(self.request.connection.stream.socket.getpeername())  # type: ignore[attr-defined]
        self.write(REPLY)


class _Health(_Query):
    def get(self) -> None:
        self.peers.append(self.request.connection.stream.socket.getpeername())  # type: ignore[attr-defined]
        self.write({"message": "pong"})


class _Echo(web.RequestHandler):
    def check_xsrf_cookie(self) -> None:  # an API, not a browser form
        pass

    def post(self) -> None:
        self.write(
            {
                "method": self.request.method,
                "type": self.request.headers.get("Content-Type"),
                "body": self.request.body.decode(),
                "cookie": self.request.headers.get("Cookie"),
                "uri": self.request.uri,
            }
        )
        self.set_cookie("session", "1")


@pytest.fixture
def query_server():
    """A stand-in API on 127.0.0.1 that records each request's client address; its /health
    answers pong, /moved/health redirects there, and /echo answers a POST's method,
    Content-Type and body."""
    peers: list[tuple[str, int]] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    routes = [
        (r"/v1/job/query/", _Query, {"peers": peers}),
        (r"/health", _Health, {"peers": peers}),
        (r"/moved/health", web.RedirectHandler, {"url": "/health", "permanent": False}),
        (r"/echo", _Echo),
    ]
    server = httpserver.HTTPServer(web.Application(routes))
    server.add_sockets([sock])
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", peers
    server.stop()


async def test_json_calls_reuse_one_connection(query_server, session) -> None:
    url, peers = query_server
    client = ManateeApiClient(url, "tok", session=session)
    for _ in range(5):
        reply = await client.query(creator="alice", page=1, page_size=10)
        assert reply["total"] == 1
    assert len(peers) == 5 and len(set(peers)) == 1


async def test_clients_made_per_request_share_the_servers_pool(query_server, session) -> None:
    """The manager builds a client per request: the pool is the session they are given."""
    url, peers = query_server
    for _ in range(3):
        await ManateeApiClient(url, "tok", session=session).query(
            creator="alice", page=1, page_size=10
        )
    assert len(set(peers)) == 1


async def test_the_health_probe_shares_the_json_calls_pooled_connection(
    query_server, session
) -> None:
    url, peers = query_server
    client = ManateeApiClient(url, "tok", session=session)
    await client.health()
    await client.query(creator="alice", page=1, page_size=10)
    await client.health()
    assert len(peers) == 3 and len(set(peers)) == 1


async def test_a_redirected_health_probe_is_not_followed(query_server, session) -> None:
    """A redirect is not the API's pong (the JSON calls follow one only to the same host)."""
    url, peers = query_server
    client = ManateeApiClient(url + "/moved", "tok", session=session)
    with pytest.raises(ApiUnavailable, match="answered /health with HTTP 302, not ManaTEE's pong"):
        await client.health()
    assert peers == []


async def test_a_client_without_a_pool_closes_its_connection_after_each_call(
    query_server,
) -> None:
    url, peers = query_server
    client = ManateeApiClient(url, "tok")
    for _ in range(2):
        await client.query(creator="alice", page=1, page_size=10)
    assert len(set(peers)) == 2


# --- raw servers that frame replies each way ---------------------------------------------

LIMIT = 1 << 20


class RawServer:
    """An HTTP server on 127.0.0.1 whose ``answer(request_number)`` gives the raw bytes
    of each reply (``None``: drop the connection unanswered); it counts connections."""

    def __init__(self, answer, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.connections = 0
        self.requests = 0
        self.open_now = 0
        self.most_open = 0
        self.close_after_reply = False
        self.dropped = 0  # connections the client closed while waiting for a reply
        self._tasks: set[asyncio.Task] = set()
        self._server: asyncio.Server | None = None
        self.base = ""
        self.url = ""

    async def start(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        scheme = "https" if self.tls else "http"
        self.base = f"{scheme}://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        self.url = self.base + "/v1/job/query/"
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> RawServer:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def _serve(self, reader, writer) -> None:
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                self.requests += 1
                # answer, unless the client hangs up first (then count it as dropped)
                answering = asyncio.ensure_future(self._answer(writer, self.requests))
                hang_up = asyncio.ensure_future(reader.read(1))
                await asyncio.wait({answering, hang_up}, return_when=asyncio.FIRST_COMPLETED)
                if not answering.done():
                    answering.cancel()
                    await asyncio.gather(answering, return_exceptions=True)
                    self.dropped += 1
                    break
                hang_up.cancel()
                await asyncio.gather(hang_up, return_exceptions=True)
                if not answering.result() or self.close_after_reply:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        except asyncio.CancelledError:  # stopped by the test
            pass
        finally:
            self.open_now -= 1
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, number: int) -> bool:
        """Write the reply (bytes, or an async iterator of pieces); False: hang up."""
        reply = self.answer(number)
        if asyncio.iscoroutine(reply):
            reply = await reply
        if reply is None:
            return False
        if isinstance(reply, bytes):
            writer.write(reply)
            await writer.drain()
            return True
        async for piece in reply:
            writer.write(piece)
            await writer.drain()
        return True


def fixed(reply: bytes):
    def answer(_n: int) -> bytes:
        return reply

    return answer


def with_length(body: bytes, extra: bytes = b"", status: bytes = b"200 OK") -> bytes:
    return b"HTTP/1.1 %s\r\n%sContent-Length: %d\r\n\r\n%s" % (status, extra, len(body), body)


async def until(condition, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


async def post(
    session: ApiSession, url: str, *, timeout: float = 5.0, limit: int = LIMIT
) -> api_session.Reply:
    return await session.post(
        url,
        {"Content-Type": "application/json"},
        b"{}",
        connect_timeout=5.0,
        timeout=timeout,
        limit=limit,
    )


async def test_a_pooled_connection_dropped_by_the_server_is_retried_once(session) -> None:
    """The server answers the first request, then drops the kept-alive connection when
    the second arrives on it (as an idle timeout racing a request does)."""

    def answer(n: int) -> bytes | None:
        return None if n == 2 else with_length(REPLY)

    async with RawServer(answer) as server:
        await post(session, server.url)
        assert (await post(session, server.url)).body == REPLY
        assert (server.connections, server.requests) == (2, 3)


async def test_a_new_connection_closed_without_a_reply_is_an_error_not_retried(
    session,
) -> None:
    """Only a pooled connection can have gone stale before the request reached it."""
    async with RawServer(fixed(None)) as server:  # type: ignore[arg-type]
        with pytest.raises(api_session.Broken) as caught:
            await post(session, server.url)
        assert str(caught.value) == "the API closed the connection without a whole reply"
        assert server.requests == 1


async def test_a_chunked_reply_is_read_whole_and_its_connection_reused(session) -> None:
    chunks = [REPLY[:10], REPLY[10:30], REPLY[30:]]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framed
    async with RawServer(fixed(reply)) as server:
        assert (await post(session, server.url)).body == REPLY
        assert (await post(session, server.url)).body == REPLY
        assert server.connections == 1


async def test_a_reply_that_ends_with_its_connection_is_read_whole_and_not_reused(
    session,
) -> None:
    async with RawServer(fixed(b"HTTP/1.1 200 OK\r\n\r\n" + REPLY)) as server:
        server.close_after_reply = True
        assert (await post(session, server.url)).body == REPLY
        assert (await post(session, server.url)).body == REPLY
        assert server.connections == 2


async def test_a_gzipped_reply_is_unpacked(session) -> None:
    packed = gzip.compress(REPLY)
    async with RawServer(fixed(with_length(packed, b"Content-Encoding: gzip\r\n"))) as server:
        assert (await post(session, server.url)).body == REPLY


async def test_a_reply_saying_connection_close_is_not_reused(session) -> None:
    async with RawServer(fixed(with_length(REPLY, b"Connection: close\r\n"))) as server:
        await post(session, server.url)
        await post(session, server.url)
        assert server.connections == 2


async def test_an_http_1_0_reply_is_not_reused(session) -> None:
    reply = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(REPLY), REPLY)
    async with RawServer(fixed(reply)) as server:
        await post(session, server.url)
        await post(session, server.url)
        assert server.connections == 2


async def test_bytes_after_the_reply_drop_the_connection(session) -> None:
    """A second reply to one request would be read as the answer to the next call."""
    stray = with_length(b'{"code":0,"msg":"Success","jobs":[],"total":99}')
    async with RawServer(fixed(with_length(REPLY) + stray)) as server:
        await post(session, server.url)
        assert (await post(session, server.url)).body == REPLY
        assert server.connections == 2


async def test_a_reply_cut_short_is_an_error_not_retried(session) -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + REPLY[:20]
    async with RawServer(fixed(cut)) as server:
        server.close_after_reply = True
        with pytest.raises(api_session.Broken) as caught:
            await post(session, server.url)
        # then aiohttp's words (without the bytes it quotes), which its version may change
        assert str(caught.value).startswith(
            "the reply's body is broken (Response payload is not completed"
        )
        assert server.requests == 1


@pytest.mark.parametrize(
    "informational",
    [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"],
    ids=["100", "103"],
)
async def test_a_1xx_reply_is_not_taken_for_the_answer(session, informational) -> None:
    def answer(n: int) -> bytes:
        return informational + with_length(job_list(n))

    async with RawServer(answer) as server:
        assert (await post(session, server.url)).body == job_list(1)
        assert (await post(session, server.url)).body == job_list(2)
        assert server.connections == 1


# --- caps --------------------------------------------------------------------------------


async def test_a_reply_over_the_limit_is_refused_on_its_length(session) -> None:
    async with RawServer(fixed(with_length(b"x" * 101))) as server:
        with pytest.raises(api_session.ReplyTooLarge):
            await post(session, server.url, limit=100)
        assert len((await post(session, server.url, limit=101)).body) == 101


async def test_a_chunked_reply_over_the_limit_is_refused_while_it_streams(session) -> None:
    async def answer(_n: int):
        yield b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        while True:  # endless: only the client's cap ends it
            yield b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)

    async with RawServer(answer) as server:
        with pytest.raises(api_session.ReplyTooLarge):
            await post(session, server.url, limit=MIB)
        await until(lambda: server.open_now == 0)


async def test_a_gzipped_reply_is_capped_on_its_unpacked_size(session) -> None:
    body = b"x" * (MIB + 1)
    packed = gzip.compress(body)
    assert len(packed) < MIB // 100
    async with RawServer(fixed(with_length(packed, b"Content-Encoding: gzip\r\n"))) as server:
        with pytest.raises(api_session.ReplyTooLarge):
            await post(session, server.url, limit=MIB)
        assert (await post(session, server.url, limit=MIB + 1)).body == body


async def test_an_endless_header_is_refused_after_8_kib(session) -> None:
    async def answer(_n: int):
        yield b"HTTP/1.1 200 OK\r\nX-Endless: "
        while True:
            yield b"a" * 64 * 1024

    async with RawServer(answer) as server:
        with pytest.raises(api_session.Broken, match=r"not valid HTTP \(Got more than 8190"):
            await post(session, server.url)


# --- timeouts ----------------------------------------------------------------------------


async def test_a_timed_out_call_leaves_no_late_reply_for_the_next(session) -> None:
    async def answer(n: int) -> bytes:
        if n == 1:
            await asyncio.sleep(0.5)
            return with_length(b'{"late":true}')
        return with_length(REPLY)

    async with RawServer(answer) as server:
        with pytest.raises(TimeoutError):
            await post(session, server.url, timeout=0.2)
        await until(lambda: server.dropped == 1)
        assert (await post(session, server.url)).body == REPLY
        assert server.connections == 2


async def test_a_reply_whose_body_trickles_past_the_timeout_times_out(session) -> None:
    async def answer(_n: int):
        yield b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
        for _ in range(1000):
            yield b" "
            await asyncio.sleep(0.05)

    async with RawServer(answer) as server:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await post(session, server.url, timeout=0.5)
        assert time.monotonic() - started < 2.0


# --- the pool's bounds -------------------------------------------------------------------


async def test_connections_open_at_once_are_bounded(monkeypatch, session) -> None:
    monkeypatch.setattr(api_session, "POOL_SIZE", 3)
    release = asyncio.Event()

    async def answer(_n: int) -> bytes:
        await release.wait()
        return with_length(REPLY)

    async with RawServer(answer) as server:
        calls = [asyncio.create_task(post(session, server.url)) for _ in range(10)]
        await until(lambda: server.requests == 3)
        assert server.most_open == 3
        release.set()
        assert all(r.body == REPLY for r in await asyncio.gather(*calls))
        assert server.most_open == 3


async def test_a_connection_idle_past_the_keepalive_time_is_not_reused(
    monkeypatch, session
) -> None:
    monkeypatch.setattr(api_session, "KEEPALIVE_SECONDS", 0.1)
    async with RawServer(fixed(with_length(REPLY))) as server:
        await post(session, server.url)
        await asyncio.sleep(0.3)  # the idle time under test, not a synchronisation
        await post(session, server.url)
        assert server.connections == 2


async def test_a_cancelled_call_frees_its_slot_and_closes_its_connection(
    monkeypatch, session
) -> None:
    monkeypatch.setattr(api_session, "POOL_SIZE", 1)

    async def answer(n: int) -> bytes:
        if n == 1:
            await asyncio.sleep(10)
        return with_length(REPLY)

    async with RawServer(answer) as server:
        hanging = asyncio.create_task(post(session, server.url))
        await until(lambda: server.requests == 1)
        hanging.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hanging
        await until(lambda: server.dropped == 1)
        assert (await asyncio.wait_for(post(session, server.url), 5)).body == REPLY
        assert server.connections == 2


# --- TLS ---------------------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path):
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context


async def test_an_https_api_is_reached_when_its_certificate_is_trusted(
    tls_server, monkeypatch, session
) -> None:
    cert, context = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    async with RawServer(fixed(with_length(REPLY)), tls=context) as server:
        assert server.url.startswith("https://")
        assert (await post(session, server.url)).body == REPLY
        assert (await post(session, server.url)).body == REPLY
        assert server.connections == 1


async def test_an_https_api_with_an_untrusted_certificate_is_unreachable(
    tls_server, session
) -> None:
    _cert, context = tls_server
    async with RawServer(fixed(with_length(REPLY)), tls=context) as server:
        with pytest.raises(api_session.Unreachable) as caught:
            await post(session, server.url)
        assert (
            str(caught.value) == "TLS failed: certificate verify failed (self-signed certificate)"
        )
        assert server.requests == 0


# --- through the Jupyter server ------------------------------------------------------------


@pytest.fixture
def raw_api(jp_asyncio_loop):
    """A raw stand-in API for the Jupyter server's extension; tests set its ``answer``."""
    server = RawServer(fixed(with_length(REPLY)))
    jp_asyncio_loop.run_until_complete(server.start())
    yield server
    jp_asyncio_loop.run_until_complete(server.stop())


@pytest.fixture
def api_url(raw_api) -> str:
    return raw_api.base


@pytest.mark.parametrize(
    "informational",
    [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"],
    ids=["100", "103"],
)
async def test_the_job_list_after_a_1xx_reply_is_the_final_reply(jp_fetch, raw_api, informational):
    raw_api.answer = lambda n: informational + with_length(job_list(n))
    for expected in (1, 2):
        status, reply = await call(jp_fetch, "jobs")
        assert status == 200
        assert [j["id"] for j in reply["jobs"]] == [expected]
    assert raw_api.connections == 1


def _peak_rss() -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", text).group(1)) * 1024  # type: ignore[union-attr]


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")


async def _status_latencies(jp_fetch, call_task: asyncio.Task, at_least: int) -> list[float]:
    """Times of GET /api/status, one after another, until the call ended (and at least
    ``at_least`` of them): how long any request to this server waited meanwhile."""
    latencies: list[float] = []
    while not call_task.done() or len(latencies) < at_least:
        started = time.perf_counter()
        response = await jp_fetch("api", "status")
        latencies.append(time.perf_counter() - started)
        assert response.code == 200
    return latencies


async def test_an_endless_header_is_a_502_that_costs_the_server_little(jp_fetch, raw_api):
    async def answer(_n: int):
        yield b"HTTP/1.1 200 OK\r\nX-Endless: "
        while True:
            yield b"a" * 64 * 1024

    raw_api.answer = answer
    assert (await jp_fetch("api", "status")).code == 200  # the server's first request, before
    _reset_peak_rss()
    before = _peak_rss()
    started = time.monotonic()
    listing = asyncio.ensure_future(call(jp_fetch, "jobs"))
    latencies = await _status_latencies(jp_fetch, listing, at_least=5)
    status, reply = await listing
    assert time.monotonic() - started < 5.0  # the request timeout of these tests
    assert status == 502
    assert "the reply is not valid HTTP (Got more than 8190 bytes" in reply["message"]
    assert _peak_rss() - before < 32 * MIB
    assert max(latencies) < 0.25, latencies


async def test_a_gzip_bomb_is_a_502_that_costs_the_server_little(jp_fetch, raw_api):
    """1 MiB of zeros packs into ~1 KiB: the stand-in sends such blocks without end."""
    packer = zlib.compressobj(9, wbits=31)
    head = packer.compress(b"\0" * MIB) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(b"\0" * MIB) + packer.flush(zlib.Z_FULL_FLUSH)
    assert len(block) < 2048  # a 500:1 bomb at least

    async def answer(_n: int):
        yield b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n" + head
        while True:
            yield block * 64

    raw_api.answer = answer
    _reset_peak_rss()
    before = _peak_rss()
    status, reply = await call(jp_fetch, "jobs")
    assert status == 502
    assert "sent a reply larger than 16 MiB; stopped reading it" in reply["message"]
    # the 16 MiB read, and the copies of it a bytearray makes as it grows
    assert _peak_rss() - before < 64 * MIB


class TestSlowReplies:
    @pytest.fixture
    def manatee_config(self, manatee_config):
        return {**manatee_config, "request_timeout": 1.0}

    async def test_a_reply_trickling_past_the_request_timeout_is_a_504(self, jp_fetch, raw_api):
        async def answer(_n: int):
            yield b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"
            for _ in range(1000):
                await asyncio.sleep(0.05)
                yield b" "

        raw_api.answer = answer
        started = time.monotonic()
        status, reply = await call(jp_fetch, "jobs")
        assert time.monotonic() - started < 3.0
        assert status == 504
        assert reply["message"] == (
            f"{raw_api.base} did not answer /v1/job/query/ within 1 s; try again later"
        )


@pytest.fixture
def tls_api(tmp_path, jp_asyncio_loop):
    """An HTTPS stand-in API whose certificate (for 127.0.0.1) no one trusts yet."""
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = RawServer(fixed(with_length(REPLY)), tls=context)
    jp_asyncio_loop.run_until_complete(server.start())
    server.cert = cert  # type: ignore[attr-defined]
    yield server
    jp_asyncio_loop.run_until_complete(server.stop())


class TestSelfSignedApi:
    @pytest.fixture
    def api_url(self, tls_api) -> str:
        return tls_api.base

    async def test_a_self_signed_certificate_is_a_502_naming_it(self, jp_fetch, tls_api):
        status, reply = await call(jp_fetch, "jobs")
        assert status == 502
        assert reply["message"] == (
            f"Cannot reach {tls_api.base} for /v1/job/query/: TLS failed: certificate verify "
            "failed (self-signed certificate)"
        )
        assert tls_api.requests == 0


class TestWrongHostCertificate:
    """The certificate is trusted, but names 127.0.0.1, and the API URL says localhost."""

    @pytest.fixture
    def api_url(self, tls_api, monkeypatch) -> str:
        monkeypatch.setenv("SSL_CERT_FILE", str(tls_api.cert))
        return tls_api.base.replace("127.0.0.1", "localhost")

    async def test_a_certificate_for_another_host_is_a_502_naming_it(
        self, jp_fetch, tls_api, api_url
    ):
        status, reply = await call(jp_fetch, "jobs")
        assert status == 502
        assert reply["message"].startswith(
            f"Cannot reach {api_url} for /v1/job/query/: TLS failed: certificate verify failed"
        )
        assert "localhost" in reply["message"]
        assert tls_api.requests == 0

    async def test_the_same_certificate_is_accepted_for_its_own_host(
        self, jp_fetch, jp_serverapp, tls_api
    ):
        """The control: the certificate is trusted; only the name was wrong."""
        jp_serverapp.web_app.settings["manatee_manager"].config.api_url = tls_api.base
        status, reply = await call(jp_fetch, "jobs")
        assert (status, reply["total"]) == (200, 1)


# --- the session's own calls ----------------------------------------------------------


async def test_post_sends_its_headers_and_body_as_a_post(query_server, session) -> None:
    url, _peers = query_server
    reply = await session.post(
        url + "/echo",
        {"Content-Type": "application/json"},
        b'{"page": 1}',
        connect_timeout=5.0,
        timeout=5.0,
        limit=LIMIT,
    )
    assert reply.status == 200
    assert json.loads(reply.body) == {
        "method": "POST",
        "type": "application/json",
        "body": '{"page": 1}',
        "cookie": None,
        "uri": "/echo",
    }


@pytest.fixture
def full_backlog():
    """A port whose listen queue is full: a new connection's SYN goes unanswered, so
    connecting hangs (as with a host that drops packets) until the client gives up."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    queued = []
    for _ in range(2):  # a backlog of 0 still queues one; the second fills it
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        queued.append(s)
    yield f"http://127.0.0.1:{port}/v1/job/query/"
    for s in [*queued, server]:
        s.close()


async def test_no_connection_within_the_connect_timeout_is_a_connect_timeout(
    full_backlog, session
) -> None:
    started = time.monotonic()
    with pytest.raises(api_session.ConnectTimeout):
        await session.post(full_backlog, {}, b"{}", connect_timeout=0.3, timeout=10.0, limit=LIMIT)
    assert time.monotonic() - started < 5.0


async def test_close_drops_the_pooled_connections(session) -> None:
    async with RawServer(fixed(with_length(REPLY))) as server:
        await post(session, server.url)
        assert server.open_now == 1
        await session.close()
        await until(lambda: server.open_now == 0)


async def test_a_call_after_close_opens_a_new_connection(session) -> None:
    async with RawServer(fixed(with_length(REPLY))) as server:
        await post(session, server.url)
        await session.close()
        assert (await post(session, server.url)).body == REPLY
        assert server.connections == 2


def test_a_message_quoting_the_reply_is_cut_before_the_first_quoted_bytes() -> None:
    message = "Invalid header value char: b'\\x00bad' then: b'more'"
    assert api_session._first_words(message) == "Invalid header value char"


def test_a_message_quoting_the_reply_in_double_quotes_is_cut_there_too() -> None:
    message = 'Bad status line: b"HTTP/1.1 99x" then: b"more"'
    assert api_session._first_words(message) == "Bad status line"


def test_a_long_message_is_cut_to_200_characters() -> None:
    assert api_session._first_words("x" * 300) == "x" * 200


async def test_a_cookie_the_api_sets_is_never_sent_back(query_server, session) -> None:
    """One session serves every user of this server: it keeps no cookies (a host name, not
    an IP address: aiohttp's jar would ignore an IP's cookies anyway)."""
    url, _peers = query_server
    url = url.replace("127.0.0.1", "localhost") + "/echo"
    for _ in range(2):
        reply = await session.post(url, {}, b"{}", connect_timeout=5.0, timeout=5.0, limit=LIMIT)
    assert json.loads(reply.body)["cookie"] is None


async def test_a_proxy_in_the_environment_is_not_used(monkeypatch, session) -> None:
    """Like tornado's client: the API is reached directly, whatever HTTP_PROXY says."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, closed_port_url())
    async with RawServer(fixed(with_length(REPLY))) as server:
        assert (await post(session, server.url)).body == REPLY
        assert server.requests == 1


async def test_each_call_has_its_own_timeout_on_a_shared_session(session) -> None:
    """A short timeout after a long one on the same session still times out on time."""
    never = asyncio.Event()

    async def answer(n: int) -> bytes:
        if n == 2:
            await never.wait()
        return with_length(REPLY)

    async with RawServer(answer) as server:
        await post(session, server.url, timeout=30.0)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(post(session, server.url, timeout=0.5), 5.0)
        assert time.monotonic() - started < 3.0
        never.set()  # let the stand-in finish its answer before it stops


async def test_a_refused_connection_is_unreachable_saying_nothing_listens(session) -> None:
    url = closed_port_url()
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(api_session.Unreachable) as caught:
        await session.post(url, {}, b"{}", connect_timeout=5.0, timeout=5.0, limit=LIMIT)
    assert str(caught.value) == f"nothing is listening at 127.0.0.1:{port} (connection refused)"


async def test_a_name_refused_on_every_address_is_unreachable_saying_nothing_listens(
    session,
) -> None:
    """``localhost`` may resolve to ::1 and 127.0.0.1: refused on each, nothing listens."""
    url = closed_port_url()
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(api_session.Unreachable) as caught:
        await session.post(
            url.replace("127.0.0.1", "localhost"),
            {},
            b"{}",
            connect_timeout=5.0,
            timeout=5.0,
            limit=LIMIT,
        )
    assert str(caught.value) == f"nothing is listening at localhost:{port} (connection refused)"


async def test_a_connection_reset_after_the_request_is_broken_with_the_systems_reason(
    session,
) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        writer.transport.abort()  # a linger of 0: the close is a reset

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    async with server:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/job/query/"
        with pytest.raises(api_session.Broken) as caught:
            await post(session, url)
    assert str(caught.value) == "Connection reset by peer"


async def test_a_url_that_is_not_http_is_broken_and_names_it(session) -> None:
    with pytest.raises(api_session.Broken) as caught:
        await post(session, "ftp://127.0.0.1/v1/job/query/")
    assert str(caught.value) == "ftp://127.0.0.1/v1/job/query/"


async def test_the_url_is_sent_as_given_without_requoting(query_server, session) -> None:
    """The client quotes the URL it builds; the session must not decode or re-encode it."""
    url, _peers = query_server
    reply = await session.post(
        url + "/echo?creator=a%7Eb%2Fc", {}, b"{}", connect_timeout=5.0, timeout=5.0, limit=LIMIT
    )
    assert json.loads(reply.body)["uri"] == "/echo?creator=a%7Eb%2Fc"


async def test_a_reply_without_a_location_has_an_empty_location(query_server, session) -> None:
    url, _peers = query_server
    reply = await session.post(
        url + "/echo", {}, b"{}", connect_timeout=5.0, timeout=5.0, limit=LIMIT
    )
    assert reply.location == ""
