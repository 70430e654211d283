"""The routes as the upstream frontend and the new panel call them, and who may call them."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tests.conftest import call, write_notebook

ROUTES = [
    ("GET", "manatee/jobs?page=1&page_size=10", None),
    ("POST", "manatee/jobs", {"path": "nb.ipynb", "filename": "nb.ipynb"}),
    ("DELETE", "manatee/jobs/abc-123", None),
    ("POST", "manatee/manifest", {"path": "nb.ipynb", "filename": "nb.ipynb"}),
    ("POST", "manatee/output", {"id": 7}),
    ("GET", "manatee/attestation?id=7", None),
    ("GET", "manatee/config", None),
]


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


@pytest.mark.parametrize(("method", "route", "body"), ROUTES)
async def test_every_route_refuses_a_request_without_credentials(
    http_server_client, http_server_port, jp_base_url, fault_server, method, route, body
):
    url = f"http://127.0.0.1:{http_server_port[1]}{jp_base_url}{route}"
    request = HTTPRequest(
        url,
        method=method,
        body=json.dumps(body) if body is not None else None,
        allow_nonstandard_methods=True,
    )
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    assert response.code == 403
    assert fault_server.seen == []


class TestUpstreamFrontendCalls:
    """The exact requests of the upstream shield panel, and the reply keys it reads."""

    async def test_list_jobs(self, jp_fetch, fault_server):
        response = await jp_fetch("manatee", "jobs", params={"page": "1", "page_size": "10"})
        assert response.code == 200
        assert response.headers["Content-Type"].startswith("application/json")
        reply = json.loads(response.body)
        assert reply["code"] == 0 and reply["total"] == 1
        assert reply["jobs"][0]["job_status"] == 5
        (request,) = fault_server.seen
        assert json.loads(request.body) == {"page": 1, "page_size": 10, "creator": "alice"}

    async def test_submit(self, jp_fetch, fault_server, jp_root_dir):
        write_notebook(jp_root_dir / "nb.ipynb")
        response = await jp_fetch(
            "manatee",
            "jobs",
            method="POST",
            body=json.dumps({"path": "nb.ipynb", "filename": "nb.ipynb"}),
        )
        reply = json.loads(response.body)
        assert reply["code"] == 0 and reply["msg"] == "Success" and reply["uuid"]

    async def test_output(self, jp_fetch, fault_server):
        response = await jp_fetch("manatee", "output", method="POST", body=json.dumps({"id": 7}))
        reply = json.loads(response.body)
        assert reply["code"] == 0 and reply["msg"] == "Success" and reply["filename"]
        assert len(fault_server.requests_to("/files/out")) == 1

    async def test_attestation(self, jp_fetch, fault_server):
        response = await jp_fetch("manatee", "attestation", params={"id": "7"})
        reply = json.loads(response.body)
        assert reply["code"] == 0 and reply["msg"] == "Success"
        assert reply["token"] == fault_server.token
        attestation_call = fault_server.requests_to("v1/job/attestation/")[0]
        assert json.loads(attestation_call.body) == {"id": 7, "creator": "alice"}


async def test_attestation_without_id_is_400_and_never_job_1(jp_fetch, fault_server):
    code, reply = await call(jp_fetch, "attestation")
    assert code == 400 and reply["message"] == "Missing job 'id'"
    assert fault_server.seen == []


async def test_mock_token_is_recognised_with_its_nonce(jp_fetch, fault_server):
    code, reply = await call(jp_fetch, "attestation", id="7")
    assert code == 200
    assert reply["kind"] == "mock" and reply["nonce"] == "0" * 32


async def test_attestation_call_sends_the_user_token(jp_fetch, fault_server):
    """Upstream's attestation route ignores it; manatee-local refuses the call without it."""
    await call(jp_fetch, "attestation", id="7")
    (request,) = fault_server.requests_to("v1/job/attestation/")
    assert request.headers["Authorization"] == "tok-9f8e7d6c5b4a-do-not-leak"


async def test_job_routes_send_the_raw_token_as_authorization(jp_fetch, fault_server):
    await call(jp_fetch, "jobs")
    (request,) = fault_server.seen
    assert request.headers["Authorization"] == "tok-9f8e7d6c5b4a-do-not-leak"


async def test_delete_sends_the_uuid_and_creator(jp_fetch, fault_server):
    code, reply = await call(jp_fetch, "jobs", "abc-123", method="DELETE")
    assert code == 200 and reply["code"] == 0
    (request,) = fault_server.seen
    assert request.path == "/v1/job/delete/"
    assert json.loads(request.body) == {"uuid": "abc-123", "creator": "alice"}


@pytest.mark.parametrize(
    "params", [{"page": "0"}, {"page": "x"}, {"page_size": "0"}, {"page_size": "1000"}]
)
async def test_bad_paging_is_400(jp_fetch, fault_server, params):
    code, reply = await call(jp_fetch, "jobs", **params)
    assert code == 400 and reply["message"]
    assert fault_server.seen == []


async def test_config_reports_a_reachable_api(jp_fetch, fault_server):
    from jupyterlab_manatee import __version__

    code, reply = await call(jp_fetch, "config")
    assert code == 200
    assert reply["configured"] is True and reply["reachable"] is True
    assert reply["api_url"] == fault_server.url
    assert reply["creator"] == "alice" and reply["version"] == __version__
    assert reply["max_workspace_size"] > 0


async def test_config_reports_an_unreachable_api(jp_fetch, fault_server):
    fault_server.mode = "html500"
    code, reply = await call(jp_fetch, "config")
    assert code == 200
    assert reply["configured"] is True and reply["reachable"] is False
    assert "HTTP 500" in reply["problem"]
