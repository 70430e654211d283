"""The user token reaches the API's Authorization header and nowhere else."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import USER_TOKEN, call
from tests.fault_server import closed_port_url


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


@pytest.fixture
def log_lines(jp_serverapp):
    """Every log record of the server, its extension and tornado, as formatted text."""
    lines: list[str] = []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = lambda record: lines.append(logging.Formatter().format(record))
    loggers = [logging.getLogger(), jp_serverapp.log]
    previous = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield lines
    for lg, level in previous:
        lg.removeHandler(handler)
        lg.setLevel(level)


async def test_token_is_in_no_log_line_and_no_reply(
    jp_fetch, jp_serverapp, fault_server, notebook, log_lines
):
    replies = []
    for mode in ("ok", "html500", "code", "redirect", "truncated"):
        fault_server.mode = mode
        replies.append(await call(jp_fetch, "jobs"))
        replies.append(
            await call(
                jp_fetch,
                "jobs",
                method="POST",
                body={"path": "analysis/nb.ipynb", "filename": "nb.ipynb"},
            )
        )
        replies.append(await call(jp_fetch, "output", method="POST", body={"id": 7}))
        replies.append(await call(jp_fetch, "attestation", id="7"))
        replies.append(await call(jp_fetch, "config"))
    jp_serverapp.web_app.settings["manatee_manager"].config.api_url = closed_port_url()
    replies.append(await call(jp_fetch, "jobs"))
    assert any(code >= 400 for code, _ in replies)
    assert log_lines, "the logs were not captured"
    assert not [line for line in log_lines if USER_TOKEN in line]
    assert not [reply for reply in replies if USER_TOKEN in str(reply)]
    assert any(r.headers.get("Authorization") == USER_TOKEN for r in fault_server.seen)
