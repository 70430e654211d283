"""Fuzzing the extension's routes with schemathesis against a live Jupyter server (a
subprocess with the extension, talking to the local backend): whatever the input, valid
or not, the server answers without a 5xx, every error is a JSON body with a message, and
every reply matches jupyterlab_manatee/openapi.yaml."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.benchmarks.data import notebook_text
from tests.benchmarks.servers import API_AUTHORIZATION, Child, start_backend, start_jupyter

OPENAPI = Path(__file__).resolve().parent.parent / "jupyterlab_manatee" / "openapi.yaml"
TOKEN = "fuzz-token-1b2c3d"
# Bounded: the whole file runs in well under a minute on 2 CPUs.
MAX_EXAMPLES = 30

# Hypothesis keeps its caches in the system's temporary folder, not in the working tree
# (it writes them while the tests are collected, before any fixture runs).
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "manatee-hypothesis")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Child, Child]]:
    """The local backend and a Jupyter server with the extension, as subprocesses; the
    contents root has a notebook so that valid paths reach the real code too."""
    work = tmp_path_factory.mktemp("fuzz")
    root = work / "root"
    (root / "analysis").mkdir(parents=True)
    (root / "analysis" / "nb.ipynb").write_text(notebook_text())
    (root / "analysis" / "data.csv").write_text("a,b\n1,2\n")
    logs = work / "logs"
    logs.mkdir()
    backend = start_backend(work / "backend", logs, max_archive_size=64 << 20)
    try:
        jupyter = start_jupyter(root, backend.url, work, logs, TOKEN)
        try:
            yield jupyter, backend
        finally:
            jupyter.stop()
    finally:
        backend.stop()


@pytest.fixture(scope="module")
def live_server(servers: tuple[Child, Child]) -> Child:
    return servers[0]


schema = schemathesis.openapi.from_path(OPENAPI)
# Unknown query parameters are ignored on purpose (cache busters); the token is ours to send.
schema.config.generation.update(allow_extra_parameters=False, with_security_parameters=False)


def _error_is_json_with_a_message(response) -> None:
    if response.status_code < 400:
        return
    headers = {name.lower(): values for name, values in response.headers.items()}
    content_type = headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), (response.status_code, content_type)
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    assert isinstance(body.get("message"), str) and body["message"].strip(), body
    assert body.get("code") == response.status_code, body


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    # the same examples every run, so what this catches does not change from run to run
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_any_input_gets_a_json_reply_without_server_error(case, live_server: Child) -> None:
    response = case.call(
        base_url=live_server.url, headers={"Authorization": f"token {TOKEN}"}, timeout=30
    )
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            negative_data_rejection,
        ],
    )
    _error_is_json_with_a_message(response)


BIG_ID = 2**63  # one past the API's signed 64-bit ids


@pytest.mark.parametrize(
    ("method", "route", "body", "status"),
    [
        ("POST", "output", {"id": BIG_ID}, 400),
        ("GET", f"attestation?id={BIG_ID}", None, 400),
        ("POST", "attestation/verify", {"path": "out\x00.ipynb"}, 400),
        ("POST", "attestation/verify", {"path": "\ud800.ipynb"}, 400),
        ("POST", "attestation/verify", {"path": "a" * 300}, 400),
        ("POST", "jobs", "not json", 400),
        ("PUT", "jobs", {}, 405),
    ],
)
def test_inputs_fuzzing_found_get_a_json_4xx(live_server: Child, method, route, body, status):
    """Inputs that once made 5xx (an id past 64 bits reached SQLite; NUL, lone surrogates
    and over-long names reached the file system), and the server's own refusals."""
    data = body if isinstance(body, str) else json.dumps(body)
    response = requests.request(
        method,
        f"{live_server.url}/manatee/{route}",
        data=None if body is None else data,
        headers={"Authorization": f"token {TOKEN}"},
        timeout=30,
    )
    assert response.status_code == status, response.text
    reply = response.json()
    assert reply["code"] == status and reply["message"] and reply["msg"] == reply["message"]
    assert isinstance(reply["reason"], str)


def test_a_call_without_credentials_gets_a_json_403(live_server: Child) -> None:
    response = requests.get(f"{live_server.url}/manatee/jobs", timeout=30)
    assert response.status_code == 403
    assert response.json()["code"] == 403 and response.json()["message"]


def query_page(backend, page: int) -> requests.Response:
    return requests.post(
        f"{backend.url}/v1/job/query/",
        json={"page": page, "page_size": 100, "creator": "bench"},
        headers={"Authorization": API_AUTHORIZATION},
        timeout=30,
    )


def test_the_backend_answers_a_page_whose_offset_wraps_64_bits_as_upstream(servers) -> None:
    # upstream computes page_size * (page - 1) in int64: it wraps, and a negative offset is
    # left out; SQLite never sees a number past 64 bits
    response = query_page(servers[1], 2**62)
    assert response.status_code == 200
    assert response.json()["code"] == 0 and isinstance(response.json()["jobs"], list)


def test_the_backend_refuses_a_page_past_64_bits_as_a_bad_request(servers) -> None:
    response = query_page(servers[1], 2**63)
    assert response.status_code == 200
    assert response.json()["code"] != 0
    assert "out of int64 range" in response.json()["msg"], response.json()
