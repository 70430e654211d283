"""JSON calls to the API reuse one kept-alive connection; uploads still stream."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from tornado import httpserver, web

from jupyterlab_manatee.api_client import ManateeApiClient

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
