"""The extension's client (`wire.parse_reply`) reads each reply the real API gave
as the case says: a success, or the matching error (job limit, not found, refused, an
API that is not answering as one)."""

from __future__ import annotations

import json

import pytest
from cases import CASES
from contract_support import load_recording

from jupyterlab_manatee import errors
from jupyterlab_manatee.remote import wire

READABLE = [
    (name, index)
    for name, case in sorted(CASES.items())
    for index, reads in enumerate(case.reads)
    if reads is not None
]


@pytest.mark.parametrize(("name", "index"), READABLE)
def test_the_client_reads_the_recorded_reply(name, index):
    recorded = load_recording(name)
    assert recorded is not None, f"no recording of {name}"
    exchange = recorded[index]
    expected = CASES[name].reads[index]
    body = exchange.body
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    route = exchange.request["path"]
    if expected == "ok":
        reply = wire.parse_reply(exchange.status, raw, route, "http://api")
        assert reply["code"] == 0
        if route == wire.QUERY:
            assert all(wire.is_job(job) for job in reply["jobs"])
        return
    with pytest.raises(getattr(errors, expected)):
        wire.parse_reply(exchange.status, raw, route, "http://api")


def test_every_case_says_how_each_reply_is_read():
    for name, case in CASES.items():
        recorded = load_recording(name)
        assert recorded is not None, f"no recording of {name}"
        assert len(case.reads) == len(recorded), name
