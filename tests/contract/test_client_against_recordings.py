"""The extension's own client (`ManateeApiClient`), over HTTP, given each reply the real
API recorded: a server replays the recorded status, headers and body, and the client
method of that route returns, or raises the error the case names."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cases import ARCHIVE, CASES
from contract_support import Exchange, load_recording

from jupyterlab_manatee import errors
from jupyterlab_manatee.remote.api_client import ManateeApiClient
from jupyterlab_manatee.remote.wire import ATTESTATION, DELETE, HEALTH, OUTPUT, QUERY, SUBMIT

ROUTES = {SUBMIT, QUERY, DELETE, OUTPUT, ATTESTATION, HEALTH}
REPLAYED = [
    (name, index)
    for name, case in sorted(CASES.items())
    for index, reads in enumerate(case.reads)
    if reads is not None
]


class Replay(ThreadingHTTPServer):
    """Answers every request with one recorded exchange's reply."""

    exchange: Exchange

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReplayHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ReplayHandler(BaseHTTPRequestHandler):
    server: Replay

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        exchange = self.server.exchange
        body = exchange.body
        if isinstance(body, str):
            data = body.encode()
        elif body is None:
            data = b""
        else:
            data = json.dumps(body).encode()
        self.send_response(exchange.status)
        for name, value in exchange.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def replay() -> Iterator[Replay]:
    server = Replay()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def call(client: ManateeApiClient, exchange: Exchange, archive: Path) -> Any:
    """The client method of the exchange's route, with the request's values."""
    request = exchange.request
    path = request["path"]
    # the client sends only well-formed requests: odd ones sent by the case become
    # ordinary ones here (the reply replayed is the same)
    body = request.get("json") if isinstance(request.get("json"), dict) else {}
    if path == SUBMIT:
        form = request.get("form", {})
        try:
            envs = json.loads(form.get("envs") or "[]")
        except ValueError:
            envs = []
        return await client.submit(
            archive,
            creator=form.get("creator", ""),
            filename=form.get("filename", ""),
            envs=envs if isinstance(envs, list) else [],
        )
    if path == QUERY:
        return await client.query(
            creator=str(body.get("creator")),
            page=body.get("page") or 1,
            page_size=body.get("page_size") or 10,
        )
    if path == DELETE:
        return await client.delete(creator=str(body.get("creator")), job_uuid=str(body.get("uuid")))
    if path == OUTPUT:
        return await client.output(creator=str(body.get("creator")), job_id=body.get("id") or 1)
    if path == ATTESTATION:
        return await client.attestation(
            creator=str(body.get("creator")), job_id=body.get("id") or 1
        )
    return await client.health()


@pytest.mark.parametrize(("name", "index"), REPLAYED)
def test_the_client_reads_the_replayed_reply(replay, tmp_path, name, index):
    recorded = load_recording(name)
    assert recorded is not None, f"no recording of {name}"
    exchange = recorded[index]
    if exchange.request.get("path") not in ROUTES:
        pytest.skip(f"{exchange.request.get('path')} is not a route the client calls")
    replay.exchange = exchange
    archive = tmp_path / "workspace.tar.gz"
    archive.write_bytes(ARCHIVE)
    expected = CASES[name].reads[index]

    async def run() -> Any:
        client = ManateeApiClient(replay.url, "token", request_timeout=10)
        return await call(client, exchange, archive)

    if expected == "ok":
        asyncio.run(run())
        return
    with pytest.raises(getattr(errors, expected)):
        asyncio.run(run())
