"""Each way the API can fail maps to one HTTP status and a message a person can act on."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import call
from tests.fault_server import closed_port_url


@pytest.fixture
def api_url(fault_server) -> str:
    return fault_server.url


@pytest.fixture
def manatee_config(manatee_config):
    return {**manatee_config, "request_timeout": 1.0, "connect_timeout": 1.0}


async def test_refused_connection_is_502_naming_the_host(jp_fetch, jp_serverapp, manatee_config):
    url = closed_port_url()
    jp_serverapp.web_app.settings["manatee_manager"].config.api_url = url
    status, reply = await call(jp_fetch, "jobs")
    assert status == 502
    assert "Cannot reach" in reply["message"] and url in reply["message"]


async def test_refused_connection_says_nothing_listens_and_what_to_do(
    jp_fetch, jp_serverapp, manatee_config
):
    url = closed_port_url()
    jp_serverapp.web_app.settings["manatee_manager"].config.api_url = url
    status, reply = await call(jp_fetch, "jobs")
    assert status == 502
    port = url.rsplit(":", 1)[1]
    assert reply["message"] == (
        f"Cannot reach {url} for /v1/job/query/: nothing is listening at 127.0.0.1:{port} "
        "(connection refused). Start the ManaTEE API (./dev run starts a local one), or point "
        "DATA_CLEAN_ROOM_HOST (c.ManateeConfig.api_url) at one that runs, then try again."
    )


async def test_config_of_a_stopped_api_is_unreachable_saying_nothing_listens(
    jp_fetch, jp_serverapp, manatee_config
):
    url = closed_port_url()
    jp_serverapp.web_app.settings["manatee_manager"].config.api_url = url
    status, reply = await call(jp_fetch, "config")
    assert (status, reply["configured"], reply["reachable"]) == (200, True, False)
    port = url.rsplit(":", 1)[1]
    assert reply["problem"].startswith(
        f"Cannot reach {url} for /health: nothing is listening at 127.0.0.1:{port} "
        "(connection refused). Start the ManaTEE API"
    )


async def test_a_submission_under_way_is_listed_until_the_api_answers(
    jp_fetch, jp_serverapp, fault_server, notebook
):
    jp_serverapp.web_app.settings["manatee_manager"].config.queue_submissions = False
    fault_server.mode = "hang"  # the API takes the upload, then answers 2 s later
    fault_server.hang_seconds = 2.0
    body = {"path": "analysis/nb.ipynb", "filename": "nb.ipynb"}
    submit = asyncio.ensure_future(call(jp_fetch, "jobs", method="POST", body=body))
    listed: list = []
    for _ in range(100):
        _, reply = await call(jp_fetch, "queue")
        listed = reply["submitting"]
        if listed:
            break
        await asyncio.sleep(0.05)
    assert [(e["notebook"], e["path"]) for e in listed] == [("nb.ipynb", "analysis/nb.ipynb")]
    await submit
    _, reply = await call(jp_fetch, "queue")
    assert reply["submitting"] == []


async def test_api_hanging_past_the_request_timeout_is_504(jp_fetch, fault_server):
    fault_server.mode = "hang"
    fault_server.hang_seconds = 5
    status, reply = await call(jp_fetch, "jobs")
    assert status == 504
    assert "did not answer" in reply["message"] and "1 s" in reply["message"]


async def test_html_500_page_is_502_quoting_its_start(jp_fetch, fault_server):
    fault_server.mode = "html500"
    status, reply = await call(jp_fetch, "jobs")
    assert status == 502
    assert "HTTP 500" in reply["message"] and "500 Internal Server Error" in reply["message"]


async def test_plain_text_200_is_502(jp_fetch, fault_server):
    fault_server.mode = "not-json"
    status, reply = await call(jp_fetch, "jobs")
    assert status == 502
    assert "not the API's JSON" in reply["message"]


async def test_api_error_code_keeps_the_api_msg_with_status_400(jp_fetch, fault_server):
    fault_server.mode = "code"
    fault_server.message = "page_size: invalid"
    status, reply = await call(jp_fetch, "jobs")
    assert status == 400
    assert "page_size: invalid" in reply["msg"]
    assert reply["code"] != 0


async def test_job_limit_is_409_and_says_what_to_do(jp_fetch, fault_server, notebook):
    fault_server.mode = "code"
    fault_server.message = ": The number of in progress jobs has reached the limit"
    status, reply = await call(
        jp_fetch, "jobs", method="POST", body={"path": "analysis/nb.ipynb", "filename": "nb.ipynb"}
    )
    assert status == 409
    assert "wait for one to finish or delete one" in reply["message"]


async def test_unknown_job_is_404(jp_fetch, fault_server):
    fault_server.mode = "code"
    fault_server.message = "record not found"
    status, reply = await call(jp_fetch, "output", method="POST", body={"id": 99})
    assert status == 404
    assert "record not found" in reply["message"]


async def test_api_413_on_submit_is_413(jp_fetch, fault_server, notebook):
    fault_server.mode = "too-large"
    status, reply = await call(
        jp_fetch, "jobs", method="POST", body={"path": "analysis/nb.ipynb", "filename": "nb.ipynb"}
    )
    assert status == 413
    assert "too large" in reply["message"]


async def test_truncated_output_download_is_502_and_leaves_no_file(
    jp_fetch, fault_server, jp_root_dir
):
    fault_server.mode = "truncated"
    before = sorted(p.relative_to(jp_root_dir) for p in jp_root_dir.rglob("*"))
    status, reply = await call(jp_fetch, "output", method="POST", body={"id": 7})
    assert status == 502
    assert "broke" in reply["message"]
    after = sorted(p.relative_to(jp_root_dir) for p in jp_root_dir.rglob("*") if p.is_file())
    assert after == [p for p in before if (jp_root_dir / p).is_file()]


async def test_empty_signed_url_for_output_is_a_clear_404(jp_fetch, fault_server):
    fault_server.mode = "empty-url"
    status, reply = await call(jp_fetch, "output", method="POST", body={"id": 7})
    assert status == 404
    assert "empty signed URL" in reply["message"]


async def test_empty_signed_url_for_attestation_is_a_clear_404(jp_fetch, fault_server):
    fault_server.mode = "empty-url"
    status, reply = await call(jp_fetch, "attestation", id="7")
    assert status == 404
    assert "attestation token" in reply["message"]


async def test_307_is_followed_once_resending_the_same_body(jp_fetch, fault_server):
    fault_server.mode = "redirect"
    status, reply = await call(jp_fetch, "jobs", page="1", page_size="5")
    assert status == 200 and reply["total"] == 1
    first, second = fault_server.requests_to("v1/job/query/")
    assert (first.path, second.path) == ("/v1/job/query/", "/moved/v1/job/query/")
    assert first.body == second.body == b'{"page": 1, "page_size": 5, "creator": "alice"}'


async def test_redirected_submit_uploads_the_whole_archive_again(jp_fetch, fault_server, notebook):
    fault_server.mode = "redirect"
    status, reply = await call(
        jp_fetch, "jobs", method="POST", body={"path": "analysis/nb.ipynb", "filename": "nb.ipynb"}
    )
    assert status == 200 and reply["uuid"]
    first, second = fault_server.requests_to("v1/job/submit/")
    assert second.path == "/moved/v1/job/submit/"
    assert len(second.body) == len(first.body) > 0


async def test_token_missing_from_storage_is_a_clear_404(jp_fetch, fault_server):
    fault_server.mode = "missing-file"
    status, reply = await call(jp_fetch, "attestation", id="7")
    assert status == 404
    assert "attestation token is not in storage" in reply["message"]


async def test_output_missing_from_storage_is_a_clear_404_and_writes_nothing(
    jp_fetch, fault_server, jp_root_dir
):
    fault_server.mode = "missing-file"
    status, reply = await call(jp_fetch, "output", method="POST", body={"id": 7})
    assert status == 404
    assert "output is not in storage" in reply["message"]
    assert [p for p in jp_root_dir.rglob("*") if p.is_file()] == []
