"""A hostile or broken API and storage: huge replies, unusable signed URLs, redirects to
other hosts and schemes, oversized tokens. Each gets a JSON error (never a 500), nothing
is written, and nothing of ours (the user token) reaches another host."""

from __future__ import annotations

import asyncio
import socket
import zlib

import pytest

from tests.conftest import USER_TOKEN, call
from tests.fault_server import FaultServer

MIB = 1024 * 1024
#: What the endless-reply stand-in would send if nobody stopped it.
HUGE = 200 * MIB
#: The extension caps JSON replies at 16 MiB; socket buffers on both sides add a few MiB.
READ_BOUND = 64 * MIB


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


@pytest.fixture
def other_host(jp_asyncio_loop):
    """A second server (another port: another host as far as URLs go) that records what
    reaches it."""
    server = FaultServer()
    jp_asyncio_loop.run_until_complete(server.start())
    yield server
    server.stop()


def files_under(root) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# --- replies too large to read ------------------------------------------------------------


class EndlessReply:
    """A raw HTTP server on 127.0.0.1 answering every request with 200 and a JSON body that
    never ends (up to ``HUGE`` bytes), counting what it got into the socket before the
    client hung up. ``framing``: "length" (declares ``HUGE`` bytes), "chunked", "close"
    (no length: the body ends when the connection does), "gzip" (as "close", gzipped: a
    few hundred KiB that unpack to ``HUGE``)."""

    CHUNK = b'{"id":1,"uuid":"u","creator":"alice","job_status":5},' * 1000

    def __init__(self, framing: str) -> None:
        self.framing = framing
        self.sent = 0
        self.raw = 0
        self._gzip = zlib.compressobj(wbits=31)
        self.ended: asyncio.Future[str] | None = None
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self.ended = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        outcome = "sent everything"
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            # a fixed send buffer: what is "sent" is at most 2 MiB ahead of what was read,
            # whatever the host's TCP autotuning allows
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MIB)
            headers = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            headers += {
                "length": f"Content-Length: {HUGE}\r\n".encode(),
                "chunked": b"Transfer-Encoding: chunked\r\n",
                "close": b"Connection: close\r\n",
                "gzip": b"Connection: close\r\nContent-Encoding: gzip\r\n",
            }[self.framing]
            writer.write(headers + b"\r\n")
            await self._send(writer, b'{"code":0,"msg":"Success","total":1,"jobs":[')
            while self.raw < HUGE:
                await self._send(writer, self.CHUNK)
        except (ConnectionError, asyncio.IncompleteReadError):
            outcome = "closed by the client"
        finally:
            writer.close()
            if self.ended is not None and not self.ended.done():
                self.ended.set_result(outcome)

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        self.raw += len(data)
        if self.framing == "gzip":
            data = self._gzip.compress(data) + self._gzip.flush(zlib.Z_SYNC_FLUSH)
        if self.framing == "chunked":
            data = f"{len(data):x}\r\n".encode() + data + b"\r\n"
        writer.write(data)
        await writer.drain()
        self.sent += len(data)


@pytest.fixture
def endless(request, jp_asyncio_loop):
    server = EndlessReply(request.param)
    jp_asyncio_loop.run_until_complete(server.start())
    yield server
    server.stop()


class TestEndlessReplies:
    @pytest.fixture
    def api_url(self, endless) -> str:
        return endless.url

    @pytest.mark.parametrize("endless", ["length", "chunked", "close"], indirect=True)
    async def test_a_huge_api_reply_is_refused_while_it_streams(self, jp_fetch, endless):
        status, reply = await call(jp_fetch, "jobs")
        assert status == 502
        assert "sent a reply larger than 16 MiB; stopped reading it" in reply["message"]
        outcome = await asyncio.wait_for(asyncio.shield(endless.ended), 60)
        # the stand-in could not send it all: the extension hung up after ~16 MiB
        assert outcome == "closed by the client"
        assert endless.sent < READ_BOUND, f"{endless.sent} bytes were sent"
        if endless.framing == "length":  # refused on its Content-Length, before any body
            assert endless.sent < 16 * MIB, f"{endless.sent} bytes were sent"


class TestGzipBomb:
    @pytest.fixture
    def api_url(self, endless) -> str:
        return endless.url

    @pytest.mark.parametrize("endless", ["gzip"], indirect=True)
    async def test_a_gzipped_reply_is_capped_as_it_unpacks(self, jp_fetch, endless):
        status, reply = await call(jp_fetch, "jobs")
        assert status == 502
        assert "sent a reply larger than 16 MiB; stopped reading it" in reply["message"]


# --- signed URLs the API should never have handed out ------------------------------------


BAD_SIGNED_URLS = [
    ("http://[::1", "is not a valid URL"),
    ("http://127.0.0.1:99999/files/out", "is not a valid URL"),
    ("file:///etc/passwd", "is not http(s)"),
    ("ftp://127.0.0.1/out", "is not http(s)"),
    ("http:///files/out", "has no host"),
    ("/files/out", "is not http(s)"),
]


@pytest.mark.parametrize(("url", "problem"), BAD_SIGNED_URLS)
async def test_an_unusable_signed_output_url_is_502_and_writes_nothing(
    jp_fetch, fault_server, jp_root_dir, url, problem
):
    fault_server.signed_url = url
    status, reply = await call(jp_fetch, "output", method="POST", body={"id": 7})
    assert status == 502
    assert reply["message"] == (
        f"The ManaTEE API's signed URL for the output {problem}: the API or its storage "
        "is misconfigured"
    )
    assert files_under(jp_root_dir) == set()


@pytest.mark.parametrize(("url", "problem"), BAD_SIGNED_URLS)
async def test_an_unusable_signed_token_url_is_502(jp_fetch, fault_server, url, problem):
    fault_server.signed_url = url
    status, reply = await call(jp_fetch, "attestation", id="7")
    assert status == 502
    assert reply["message"] == (
        f"The ManaTEE API's signed URL for the attestation token {problem}: the API or its "
        "storage is misconfigured"
    )


@pytest.mark.parametrize(
    ("location", "problem"),
    [
        ("file:///etc/passwd", "is not http(s)"),
        ("http://[::1", "is not a valid URL"),
        ("http://127.0.0.1:99999/x", "is not a valid URL"),
    ],
)
async def test_a_storage_redirect_to_another_scheme_is_502_and_writes_nothing(
    jp_fetch, fault_server, jp_root_dir, location, problem
):
    fault_server.file_redirect = location
    status, reply = await call(jp_fetch, "output", method="POST", body={"id": 7})
    assert status == 502
    assert (
        reply["message"] == f"Storage redirected the output to a URL that {problem}; not following"
    )
    assert files_under(jp_root_dir) == set()


async def test_a_storage_redirect_loop_is_502(jp_fetch, fault_server, jp_root_dir):
    fault_server.file_redirect = f"{fault_server.url}/files/out"
    status, reply = await call(jp_fetch, "output", method="POST", body={"id": 7})
    assert status == 502
    assert reply["message"] == "Storage redirected the output more than 5 times"
    assert len(fault_server.requests_to("files/out")) == 6
    assert files_under(jp_root_dir) == set()


async def test_a_storage_redirect_to_another_host_is_followed_without_our_headers(
    jp_fetch, fault_server, other_host, jp_root_dir
):
    fault_server.file_redirect = f"{other_host.url}/files/out"
    other_host.file_body = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    status, reply = await call(jp_fetch, "output", method="POST", body={"id": 7})
    assert (status, reply["filename"]) == (200, "manatee-outputs/out-7-nb.ipynb")
    assert (jp_root_dir / reply["filename"]).read_bytes() == other_host.file_body
    reached = [(s.path, s.headers.get("Authorization")) for s in other_host.seen]
    # the output's and the token's URL both redirect there
    assert reached == [("/files/out", None), ("/files/out", None)]
    assert not any(USER_TOKEN in str(s.headers) for s in other_host.seen)


async def test_an_api_redirect_to_another_host_is_not_followed(jp_fetch, fault_server, other_host):
    """The API's routes carry ``Authorization: <user token>``: a 307 to another host is
    refused, so that host never sees the token (nor anything else)."""
    fault_server.mode = "redirect"
    fault_server.redirect_base = other_host.url
    status, reply = await call(jp_fetch, "jobs")
    assert status == 502
    assert reply["message"] == (
        "The ManaTEE API redirected /v1/job/query/ to another host; not following"
    )
    assert other_host.seen == []
    assert [s.headers.get("Authorization") for s in fault_server.seen] == [USER_TOKEN]


async def test_an_api_redirect_to_an_unusable_url_is_502(jp_fetch, fault_server):
    fault_server.mode = "redirect"
    fault_server.redirect_base = "http://[::1"
    status, reply = await call(jp_fetch, "jobs")
    assert status == 502
    assert reply["message"] == (
        "The ManaTEE API redirected /v1/job/query/ to an unusable URL; not following"
    )


# --- tokens ----------------------------------------------------------------------------


async def test_an_attestation_token_over_1_mib_is_refused(jp_fetch, fault_server):
    fault_server.token = "x" * (MIB + 1)
    status, reply = await call(jp_fetch, "attestation", id="7")
    assert status == 502
    assert reply["message"] == (
        "The attestation token is larger than 1048576 bytes; refusing to read it"
    )


async def test_a_token_of_exactly_1_mib_is_read(jp_fetch, fault_server):
    """The control: the limit is 1 MiB, not less."""
    fault_server.token = "x" * MIB
    status, reply = await call(jp_fetch, "attestation", id="7")
    assert (status, len(reply["token"])) == (200, MIB)


async def test_an_oversized_token_costs_the_output_nothing(jp_fetch, fault_server, jp_root_dir):
    fault_server.token = "x" * (MIB + 1)
    status, reply = await call(jp_fetch, "output", method="POST", body={"id": 7})
    assert (status, reply["filename"]) == (200, "manatee-outputs/out-7-nb.ipynb")
    assert reply["attestation"]["verdict"] == "token unavailable"
    assert "larger than 1048576 bytes" in reply["attestation"]["problem"]
    assert files_under(jp_root_dir) == {"manatee-outputs/out-7-nb.ipynb"}
