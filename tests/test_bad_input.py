"""Malformed input gets a 4xx JSON error, never a 500 with a traceback, and files the user
keeps that are not regular files never block the server."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from tests.conftest import call


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


@pytest.mark.parametrize(
    "body",
    [
        '{"id": 1e999}',
        '{"id": Infinity}',
        '{"id": -Infinity}',
        '{"id": NaN}',
        '{"id": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
    ids=["1e999", "Infinity", "-Infinity", "NaN", "deeply nested"],
)
async def test_an_unusable_json_body_is_a_400(jp_fetch, fault_server, body):
    code, reply = await call(jp_fetch, "output", method="POST", body=body)
    assert code == 400, reply
    assert reply["reason"] == "BadRequest" and reply["message"]
    assert fault_server.seen == []


async def test_a_fifo_named_like_an_attestation_record_is_refused_without_blocking(
    jp_fetch, fault_server, jp_root_dir
):
    (jp_root_dir / "out-7-nb.ipynb").write_text("{}")
    os.mkfifo(jp_root_dir / "out-7-nb.ipynb.attestation.json")
    code, reply = await asyncio.wait_for(
        call(jp_fetch, "attestation", "verify", method="POST", body={"path": "out-7-nb.ipynb"}),
        timeout=60,
    )
    assert code == 400, reply
    assert "not a regular file" in reply["message"]


async def test_the_routes_still_answer_after_a_fifo_was_asked_for(
    jp_fetch, fault_server, jp_root_dir
):
    """The pool the FIFO would have blocked also serves tornado's DNS lookups."""
    (jp_root_dir / "out.ipynb").write_text("{}")
    os.mkfifo(jp_root_dir / "out.ipynb.attestation.json")
    for _ in range(4):  # more than the default pool's idle threads would absorb
        await call(jp_fetch, "attestation", "verify", method="POST", body={"path": "out.ipynb"})
    code, reply = await asyncio.wait_for(call(jp_fetch, "jobs"), timeout=60)
    assert code == 200, reply


async def test_a_fifo_named_like_an_output_is_refused(jp_fetch, fault_server, jp_root_dir):
    os.mkfifo(jp_root_dir / "out-8-nb.ipynb")
    record = {"token": "mock tee token with nonce " + "0" * 32}
    (jp_root_dir / "out-8-nb.ipynb.attestation.json").write_text(json.dumps(record))
    code, reply = await asyncio.wait_for(
        call(jp_fetch, "attestation", "verify", method="POST", body={"path": "out-8-nb.ipynb"}),
        timeout=60,
    )
    assert code == 400, reply
