"""Malformed input gets a 4xx JSON error, never a 500 with a traceback, and files the user
keeps that are not regular files never block the server."""

from __future__ import annotations

import asyncio
import json
import os
import re

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


#: A reply to bad input quotes it, cut to at most a few hundred characters.
QUOTE_LIMIT = 400
REPLY_LIMIT = 4 * 1024
LONG_PATH_MESSAGE = "is longer than the 4096 bytes (UTF-8) a file path can have"
PATH_ROUTES = [("jobs",), ("manifest",), ("attestation", "verify")]


async def timed_call(jp_fetch, *route: str, body: str) -> tuple[int, dict, int, float]:
    """``call`` with the raw reply's size and the time it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    response = await jp_fetch(*("manatee", *route), method="POST", body=body, raise_error=False)
    return response.code, json.loads(response.body), len(response.body), loop.time() - start


def longest_run(text: str, char: str) -> int:
    """The longest run of ``char`` in ``text``: how much of the input the reply quotes."""
    return max((len(m) for m in re.findall(f"{re.escape(char)}+", text)), default=0)


@pytest.mark.parametrize("route", PATH_ROUTES, ids=["/".join(r) for r in PATH_ROUTES])
async def test_a_60_mb_path_is_a_small_quick_400(jp_fetch, fault_server, route):
    body = json.dumps({"path": "p" * (60 * 1024 * 1024)})
    code, reply, size, seconds = await timed_call(jp_fetch, *route, body=body)
    assert (code, reply["reason"]) == (400, "BadRequest"), reply["message"][:500]
    assert LONG_PATH_MESSAGE in reply["message"]
    assert size < REPLY_LIMIT
    assert longest_run(reply["message"], "p") < QUOTE_LIMIT
    assert seconds < 10  # it took 16-24 s when the path came back twice
    assert fault_server.seen == []


@pytest.mark.parametrize("route", PATH_ROUTES, ids=["/".join(r) for r in PATH_ROUTES])
async def test_a_path_just_over_4096_bytes_is_a_400_before_it_is_looked_at(
    jp_fetch, fault_server, jp_root_dir, route
):
    path = "a" * 4091 + ".ipynb"  # 4097 bytes
    code, reply = await call(jp_fetch, *route, method="POST", body={"path": path})
    assert (code, LONG_PATH_MESSAGE in reply["message"]) == (400, True), reply
    assert longest_run(reply["message"], "a") < QUOTE_LIMIT


async def test_the_path_limit_counts_encoded_bytes_not_characters(jp_fetch, fault_server):
    path = "é" * 2046 + ".ipynb"  # 2052 characters, 4098 bytes in UTF-8
    code, reply = await call(jp_fetch, "manifest", method="POST", body={"path": path})
    assert (code, LONG_PATH_MESSAGE in reply["message"]) == (400, True), reply


async def test_a_path_of_4096_bytes_is_looked_at(jp_fetch, fault_server):
    """The control: a path at the limit is resolved (the notebook is simply not there)."""
    path = ("a" * 199 + "/") * 20 + "b" * 90 + ".ipynb"
    assert len(path.encode()) == 4096
    code, reply = await call(jp_fetch, "manifest", method="POST", body={"path": path})
    assert (code, reply["message"].startswith("No notebook at 'aaa")) == (404, True), reply
    assert longest_run(reply["message"], "a") < QUOTE_LIMIT


@pytest.mark.parametrize(
    ("route", "body", "char"),
    [
        (("jobs",), {"path": "nb.ipynb", "filename": "f" * 5_000_000}, "f"),
        (("manifest",), {"path": "d" * 4000 + "\x01/nb.ipynb"}, "d"),
        (("attestation", "verify"), {"path": "v" * 4000 + "\x01"}, "v"),
        (("output",), {"id": "i" * 5_000_000}, "i"),
    ],
    ids=["filename", "notebook path", "saved output path", "job id"],
)
async def test_an_error_quotes_at_most_a_few_hundred_characters_of_the_input(
    jp_fetch, fault_server, jp_root_dir, route, body, char
):
    (jp_root_dir / "nb.ipynb").write_text("{}")
    code, reply, size, _ = await timed_call(jp_fetch, *route, body=json.dumps(body))
    assert code == 400, reply["message"][:500]
    assert 0 < longest_run(reply["message"], char) < QUOTE_LIMIT
    assert size < REPLY_LIMIT
