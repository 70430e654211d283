"""An HTTP server on 127.0.0.1 that speaks the API's routes badly on purpose.

``mode`` picks the fault: "hang" (answers after the client gave up), "html500" (a panic
page), "truncated" (a signed download that breaks off), "redirect" (307 from every slash
route to the same route under /moved, which then answers like the real API), "code"
(HTTP 200 with ``code`` 10001 and ``msg``), "not-json" (HTTP 200 text), "too-large"
(a 413 text page), "empty-url" (output and attestation with an empty ``signed_url``),
"missing-file" (signed URLs answer 404, as storage does for a job that wrote nothing),
"die-mid-upload" (the connection is dropped once 64 KiB of a body arrived).
Hostile settings: ``signed_url`` replaces both signed URLs, ``file_redirect`` makes the
signed files answer 302 to it, ``redirect_base`` sends mode "redirect" to another host.
Every request is recorded (method, path, headers, body size) for assertions.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import tarfile
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP

from tornado import httpserver, web


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = field(repr=False)

    def form(self) -> dict[str, tuple[bytes, dict[str, str]]]:
        """The multipart fields: name -> (content, part headers)."""
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + self.body)
        fields = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[name] = (part.get_payload(decode=True), dict(part.items()))
        return fields

    def archive(self) -> tarfile.TarFile:
        """The submitted workspace archive, opened for reading."""
        return tarfile.open(fileobj=io.BytesIO(self.form()["file"][0]), mode="r:gz")


@web.stream_request_body
class _Handler(web.RequestHandler):
    def initialize(self, server: FaultServer) -> None:
        self.server = server
        self.body = bytearray()

    def data_received(self, chunk: bytes) -> None:
        self.body.extend(chunk)
        if self.server.mode == "die-mid-upload" and len(self.body) > 64 * 1024:
            self.server.seen.append(Seen("POST", self.request.path, {}, bytes(self.body)))
            self.request.connection.stream.close()

    def check_xsrf_cookie(self) -> None:
        """Not a browser-facing server."""

    async def get(self, path: str) -> None:
        await self.answer(path)

    async def post(self, path: str) -> None:
        await self.answer(path)

    async def answer(self, path: str) -> None:
        server = self.server
        server.seen.append(
            Seen(
                self.request.method or "", "/" + path, dict(self.request.headers), bytes(self.body)
            )
        )
        mode = server.mode
        if path.startswith("files/"):
            await self.serve_file(path)
            return
        if mode == "hang":
            await asyncio.sleep(server.hang_seconds)
            self.write({"code": 0, "msg": "Success", "jobs": [], "total": 0})
        elif mode == "html500":
            self.set_status(500)
            self.write("<html><body><h1>500 Internal Server Error</h1>panic</body></html>")
        elif mode == "not-json":
            self.write("OK but not JSON")
        elif mode == "too-large":
            self.set_status(413)
            self.write("Request Entity Too Large")
        elif mode == "code":
            self.write({"code": 10001, "msg": server.message})
        elif mode == "redirect" and not path.startswith("moved/") and path != "health":
            self.redirect(server.redirect_base + "/moved/" + path, status=307)
        else:
            self.write(self.success(path.removeprefix("moved/")))

    def success(self, route: str) -> dict:
        base = self.server.url
        signed = "" if self.server.mode == "empty-url" else f"{base}/files/out"
        if self.server.signed_url is not None:
            signed = self.server.signed_url
        if route == "health":
            return {"message": "pong"}
        if route == "v1/job/submit/":
            return {"code": 0, "msg": "Success", "uuid": "00000000-1111-2222-3333-444444444444"}
        if route == "v1/job/query/":
            job = {
                "id": 7,
                "uuid": "00000000-1111-2222-3333-444444444444",
                "creator": "alice",
                "job_status": 5,
                "jupyter_file_name": self.server.listed_notebook,
                "created_at": "2026-11-26 10:00:00",
                "updated_at": "2026-11-26 10:05:00",
            }
            return {"code": 0, "msg": "Success", "jobs": [job], "total": 1}
        if route == "v1/job/output/download/":
            return {
                "code": 0,
                "msg": "Success",
                "signed_url": signed,
                "filename": self.server.output_filename,
            }
        if route == "v1/job/attestation/":
            token_url = "" if self.server.mode == "empty-url" else f"{base}/files/token"
            if self.server.signed_url is not None:
                token_url = self.server.signed_url
            return {"code": 0, "msg": "Success", "signed_url": token_url}
        return {"code": 0, "msg": "Success"}

    async def serve_file(self, path: str) -> None:
        body = self.server.file_body if path == "files/out" else self.server.token.encode()
        if self.server.file_redirect is not None:
            self.redirect(self.server.file_redirect, status=302)
            return
        if self.server.mode == "missing-file":
            self.set_status(404)
            self.write("<Error><Code>NoSuchKey</Code></Error>")
            return
        if self.server.mode == "truncated":
            self.set_header("Content-Length", str(len(body)))
            self.write(body[: len(body) // 2])
            await self.flush()
            self.request.connection.stream.close()
            return
        self.write(body)


class FaultServer:
    """Start with ``await start()``; ``url`` has no trailing slash."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.message = "something went wrong"
        self.hang_seconds = 30.0
        self.file_body = json.dumps({"cells": [], "metadata": {}, "nbformat": 4}).encode() * 200
        self.output_filename = "out-7-nb.ipynb"
        self.listed_notebook = "nb.ipynb"
        self.token = "mock tee token with nonce " + "0" * 32
        self.signed_url: str | None = None
        self.file_redirect: str | None = None
        self.redirect_base = ""
        self.seen: list[Seen] = []
        self.url = ""
        self._server: httpserver.HTTPServer | None = None

    async def start(self) -> None:
        app = web.Application([(r"/(.*)", _Handler, {"server": self})])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        self._server = httpserver.HTTPServer(app)
        self._server.add_sockets([sock])
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    def stop(self) -> None:
        if self._server:
            self._server.stop()

    def requests_to(self, route: str) -> list[Seen]:
        return [s for s in self.seen if s.path.endswith(route)]


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"
