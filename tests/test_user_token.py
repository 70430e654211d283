"""A USER_TOKEN that an HTTP header cannot carry is a configuration problem in words: the
banner says so, every route that talks to the API answers 503, the server starts, and the
token's value is never echoed."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import call

PROBLEM = (
    "USER_TOKEN has characters an HTTP header cannot carry (only printable ASCII: no line "
    "breaks, control or non-ASCII characters, no space at either end): fix USER_TOKEN or "
    "c.ManateeConfig.user_token"
)

#: each kind of token a header cannot carry (the secret part is what must never show)
BAD_TOKENS = {
    "outside-latin-1": "tok-s3cret-\u20ac",
    "latin-1-not-ascii": "tok-s3cret-\u00e9",
    "line-break": "tok-s3cret\r\nX-Injected: 1",
    "control-character": "tok-s3cret\x00",
    "space-at-the-end": "tok-s3cret ",
}

API_ROUTES = [
    ("GET", "jobs", None, {}),
    ("POST", "jobs", {"path": "nb.ipynb", "filename": "nb.ipynb"}, {}),
    ("POST", "output", {"id": 7}, {}),
    ("GET", "attestation", None, {"id": "7"}),
    ("DELETE", "jobs/00000000-1111-2222-3333-444444444444", None, {}),
]


@pytest.fixture(params=list(BAD_TOKENS), ids=list(BAD_TOKENS))
def bad_token(request) -> str:
    return BAD_TOKENS[request.param]


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


@pytest.fixture
def manatee_config(manatee_config, bad_token):
    return {**manatee_config, "user_token": bad_token}


async def test_the_config_route_reports_the_token_for_the_banner(jp_fetch, bad_token):
    status, reply = await call(jp_fetch, "config")
    assert status == 200
    assert "s3cret" not in str(reply)
    assert (reply["configured"], reply["problem"]) == (False, PROBLEM)
    assert reply["reachable"] is None  # nothing was asked of the API


@pytest.mark.parametrize(("method", "route", "body", "params"), API_ROUTES)
async def test_routes_that_talk_to_the_api_answer_503_saying_so(
    jp_fetch, fault_server, notebook, method, route, body, params
):
    status, reply = await call(jp_fetch, *route.split("/"), method=method, body=body, **params)
    assert status == 503
    assert reply["message"] == PROBLEM
    assert "s3cret" not in str(reply)
    assert fault_server.seen == []


async def test_the_server_starts_and_warns_without_the_value(jp_serverapp, jp_fetch):
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    jp_serverapp.log.addHandler(handler)
    try:
        from jupyterlab_manatee.extension import ManateeExtension

        ManateeExtension._load_jupyter_server_extension(jp_serverapp)
    finally:
        jp_serverapp.log.removeHandler(handler)
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert warnings == [f"jupyterlab_manatee: {PROBLEM} (the shield panel answers 503)"]


class TestTokensAHeaderCarries:
    """The control: printable ASCII, spaces inside included, is sent exactly as set."""

    @pytest.fixture(params=["tok-9f8e", "Bearer tok 9f8e", ""], ids=["plain", "spaces", "empty"])
    def bad_token(self, request) -> str:
        return request.param

    async def test_it_reaches_the_api_as_is(self, jp_fetch, fault_server, bad_token):
        status, reply = await call(jp_fetch, "jobs")
        assert status == 200
        assert [s.headers.get("Authorization") for s in fault_server.seen] == [bad_token]
        status, reply = await call(jp_fetch, "config")
        assert (reply["configured"], reply["problem"]) == (True, None)
