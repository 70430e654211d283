"""JSON calls to the API reuse one kept-alive connection; uploads still stream."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import ssl

import pytest
from tornado import httpserver, web

from jupyterlab_manatee import keepalive
from jupyterlab_manatee.api_client import ManateeApiClient
from tests.self_signed import self_signed

JOB = {
    "id": 1,
    "uuid": "u",
    "creator": "alice",
    "job_status": 5,
    "jupyter_file_name": "nb.ipynb",
    "created_at": "2026-01-01 00:00:00",
    "updated_at": "2026-01-01 00:00:00",
}


class _Query(web.RequestHandler):
    def initialize(self, peers: list[tuple[str, int]]) -> None:
        self.peers = peers

    def check_xsrf_cookie(self) -> None:  # an API, not a browser form
        pass

    def post(self) -> None:
        self.peers.append(self.request.connection.stream.socket.getpeername())  # type: ignore[attr-defined]
        self.write(json.dumps({"code": 0, "msg": "Success", "jobs": [JOB], "total": 1}))


@pytest.fixture
def query_server():
    """A stand-in API on 127.0.0.1 that records each request's client address."""
    peers: list[tuple[str, int]] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    server = httpserver.HTTPServer(web.Application([(r"/v1/job/query/", _Query, {"peers": peers})]))
    server.add_sockets([sock])
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", peers
    server.stop()


async def test_json_calls_reuse_one_connection(query_server) -> None:
    url, peers = query_server
    client = ManateeApiClient(url, "tok")
    for _ in range(5):
        reply = await client.query(creator="alice", page=1, page_size=10)
        assert reply["total"] == 1
    assert len(peers) == 5 and len(set(peers)) == 1


async def test_a_fresh_client_object_still_uses_the_pool(query_server) -> None:
    """The manager builds a client per request: the pool must outlive it."""
    url, peers = query_server
    for _ in range(3):
        await ManateeApiClient(url, "tok").query(creator="alice", page=1, page_size=10)
    assert len(set(peers)) == 1


REPLY = json.dumps({"code": 0, "msg": "Success", "jobs": [JOB], "total": 1}).encode()


async def _read_request(reader) -> bool:
    """Read one request (headers and Content-Length body); False at end of stream."""
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return False
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return True


async def test_a_pooled_connection_dropped_by_the_server_is_retried_once() -> None:
    """The server answers the first request, then drops the kept-alive connection when
    the second arrives on it (as an idle timeout racing a request does)."""
    connections = 0

    async def serve(reader, writer) -> None:
        nonlocal connections
        connections += 1
        answered = 0
        try:
            while await _read_request(reader):
                if connections == 1 and answered == 1:
                    break  # drop it without an answer
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(REPLY), REPLY)
                )
                await writer.drain()
                answered += 1
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        client = ManateeApiClient(url, "tok")
        await client.query(creator="alice", page=1, page_size=10)
        reply = await client.query(creator="alice", page=1, page_size=10)
        assert reply["total"] == 1 and connections == 2
    finally:
        server.close()


# --- the client's HTTP, against raw servers that frame replies each way -----------------

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
        self.heads: list[bytes] = []
        self.close_after_reply = False
        self.dropped = 0  # connections the client closed while waiting for a reply
        self._tasks: set[asyncio.Task] = set()
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1/job/query/"
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader, writer) -> None:
        self._tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                self.requests += 1
                # answer, unless the client hangs up first (then count it as dropped)
                answering = asyncio.ensure_future(self.answer(self.requests))
                hang_up = asyncio.ensure_future(reader.read(1))
                await asyncio.wait({answering, hang_up}, return_when=asyncio.FIRST_COMPLETED)
                if not answering.done():
                    answering.cancel()
                    self.dropped += 1
                    break
                hang_up.cancel()
                await asyncio.gather(hang_up, return_exceptions=True)
                reply = answering.result()
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
                if self.close_after_reply:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


def fixed(reply: bytes):
    async def answer(_n: int) -> bytes:
        return reply

    return answer


def with_length(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (extra, len(body), body)


async def until(condition, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


async def post(url: str, *, timeout: float = 5.0, limit: int = LIMIT) -> keepalive.Reply:
    return await keepalive.post(
        url,
        {"Content-Type": "application/json"},
        b"{}",
        connect_timeout=5.0,
        timeout=timeout,
        limit=limit,
    )


async def test_a_chunked_reply_is_read_whole_and_its_connection_reused() -> None:
    chunks = [REPLY[:10], REPLY[10:30], REPLY[30:]]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framed
    async with RawServer(fixed(reply)) as server:
        assert (await post(server.url)).body == REPLY
        assert (await post(server.url)).body == REPLY
        assert server.connections == 1


async def test_a_reply_that_ends_with_its_connection_is_read_whole_and_not_reused() -> None:
    async with RawServer(fixed(b"HTTP/1.1 200 OK\r\n\r\n" + REPLY)) as server:
        server.close_after_reply = True
        assert (await post(server.url)).body == REPLY
        assert (await post(server.url)).body == REPLY
        assert server.connections == 2


async def test_a_gzipped_reply_is_unpacked() -> None:
    packed = gzip.compress(REPLY)
    async with RawServer(fixed(with_length(packed, b"Content-Encoding: gzip\r\n"))) as server:
        assert (await post(server.url)).body == REPLY


async def test_a_reply_saying_connection_close_is_not_reused() -> None:
    async with RawServer(fixed(with_length(REPLY, b"Connection: close\r\n"))) as server:
        await post(server.url)
        await post(server.url)
        assert server.connections == 2


async def test_an_http_1_0_reply_is_not_reused() -> None:
    reply = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(REPLY), REPLY)
    async with RawServer(fixed(reply)) as server:
        await post(server.url)
        await post(server.url)
        assert server.connections == 2


async def test_a_second_reply_to_one_request_drops_the_connection() -> None:
    """Bytes after the reply would be read as the answer to the next call."""
    stray = with_length(b'{"code":0,"msg":"Success","jobs":[],"total":99}')
    async with RawServer(fixed(with_length(REPLY) + stray)) as server:
        await post(server.url)
        assert (await post(server.url)).body == REPLY
        assert server.connections == 2


async def test_a_reply_cut_short_on_a_new_connection_is_an_error_not_retried() -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + REPLY[:20]
    async with RawServer(fixed(cut)) as server:
        server.close_after_reply = True
        with pytest.raises(keepalive.Broken):
            await post(server.url)
        assert server.requests == 1


async def test_a_new_connection_closed_without_a_reply_is_an_error_not_retried() -> None:
    """Only a pooled connection can have gone stale before the request reached it."""

    async def drop(_n: int) -> None:
        return None

    async with RawServer(drop) as server:
        with pytest.raises(keepalive.Broken):
            await post(server.url)
        assert server.requests == 1


async def test_a_reply_over_the_limit_is_refused_on_its_length() -> None:
    async with RawServer(fixed(with_length(b"x" * 101))) as server:
        with pytest.raises(keepalive.ReplyTooLarge):
            await post(server.url, limit=100)
        assert len((await post(server.url, limit=101)).body) == 101


async def test_a_timed_out_call_leaves_no_late_reply_for_the_next() -> None:
    async def answer(n: int) -> bytes:
        if n == 1:
            await asyncio.sleep(0.5)
            return with_length(b'{"late":true}')
        return with_length(REPLY)

    async with RawServer(answer) as server:
        with pytest.raises(TimeoutError):
            await post(server.url, timeout=0.2)
        await until(lambda: server.dropped == 1)
        assert (await post(server.url)).body == REPLY
        assert server.connections == 2


async def test_a_header_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    async with RawServer(fixed(with_length(REPLY))) as server:
        with pytest.raises(keepalive.Broken):
            await keepalive.post(
                server.url,
                {"Authorization": "Bearer x\r\nX-Injected: 1"},
                b"{}",
                connect_timeout=5,
                timeout=5,
                limit=LIMIT,
            )
        assert server.requests == 0


async def test_the_request_names_the_host_and_its_length() -> None:
    async with RawServer(fixed(with_length(REPLY))) as server:
        await post(server.url)
        port = server.url.split(":")[2].split("/")[0]
        head = server.heads[0].decode()
        assert head.startswith("POST /v1/job/query/ HTTP/1.1\r\n")
        assert f"\r\nHost: 127.0.0.1:{port}\r\n" in head
        assert "\r\nContent-Length: 2\r\n" in head


async def test_connections_open_at_once_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(keepalive, "POOL_SIZE", 3)
    monkeypatch.setattr(keepalive, "_pools", {})
    release = asyncio.Event()

    async def answer(_n: int) -> bytes:
        await release.wait()
        return with_length(REPLY)

    async with RawServer(answer) as server:
        calls = [asyncio.create_task(post(server.url)) for _ in range(10)]
        await asyncio.sleep(0.3)
        assert server.most_open == 3
        release.set()
        assert all(r.body == REPLY for r in await asyncio.gather(*calls))
        assert server.most_open == 3


async def test_a_connection_idle_past_the_keepalive_time_is_not_reused(monkeypatch) -> None:
    monkeypatch.setattr(keepalive, "KEEPALIVE_SECONDS", 0.1)
    async with RawServer(fixed(with_length(REPLY))) as server:
        await post(server.url)
        await asyncio.sleep(0.2)
        await post(server.url)
        assert server.connections == 2


async def test_a_cancelled_call_frees_its_slot_and_closes_its_connection(monkeypatch) -> None:
    monkeypatch.setattr(keepalive, "POOL_SIZE", 1)
    monkeypatch.setattr(keepalive, "_pools", {})

    async def answer(n: int) -> bytes:
        if n == 1:
            await asyncio.sleep(10)
        return with_length(REPLY)

    async with RawServer(answer) as server:
        hanging = asyncio.create_task(post(server.url))
        await asyncio.sleep(0.2)
        hanging.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hanging
        await until(lambda: server.dropped == 1)
        assert (await asyncio.wait_for(post(server.url), 5)).body == REPLY
        assert server.connections == 2


@pytest.fixture
def tls_server(tmp_path):
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context


async def test_an_https_api_is_reached_when_its_certificate_is_trusted(
    tls_server, monkeypatch
) -> None:
    cert, context = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    keepalive._tls.cache_clear()
    try:
        async with RawServer(fixed(with_length(REPLY)), tls=context) as server:
            assert server.url.startswith("https://")
            assert (await post(server.url)).body == REPLY
            assert (await post(server.url)).body == REPLY
            assert server.connections == 1
    finally:
        keepalive._tls.cache_clear()


async def test_an_https_api_with_an_untrusted_certificate_is_unreachable(tls_server) -> None:
    _cert, context = tls_server
    keepalive._tls.cache_clear()
    async with RawServer(fixed(with_length(REPLY)), tls=context) as server:
        with pytest.raises(keepalive.Unreachable, match="CERTIFICATE_VERIFY_FAILED"):
            await post(server.url)
        assert server.requests == 0
