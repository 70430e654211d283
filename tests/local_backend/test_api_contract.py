"""The local backend honours the ManaTEE API contract (section 1), point by point.

These tests need no kernel except the job-limit test: their jobs fail fast in status 2
(the archive holds no notebook) or are never started.
"""

from __future__ import annotations

import gzip
import os
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import requests
from lb_support import (
    CREATOR,
    QUICK_FAIL_ARCHIVE,
    TERMINAL,
    TOKEN,
    Api,
    gated_notebook,
    notebook_bytes,
    workspace_archive,
)

JOB_ROUTES = ["submit", "query", "delete", "output/download", "attestation"]
JOB_KEYS = {
    "id",
    "uuid",
    "creator",
    "job_status",
    "jupyter_file_name",
    "created_at",
    "updated_at",
    "status_reason",
}
LIMIT_MSG = "The number of in progress jobs has reached the limit"


def assert_error(response: requests.Response, *fragments: str) -> str:
    """Upstream's error shape: HTTP 200, code 10001, a message naming the problem."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 10001, body
    for fragment in fragments:
        assert fragment in body["msg"], body
    return body["msg"]


@pytest.fixture
def held_api(local_backend) -> Api:
    """A client of a backend that starts no build: its jobs stay in status 0."""
    local_backend.hold_builds()
    return Api(local_backend.url)


def quick_job(api: Api) -> dict:
    """A job that reaches a terminal status without starting a kernel."""
    job_uuid = api.submit_ok(QUICK_FAIL_ARCHIVE)
    return api.wait(job_uuid, TERMINAL)


# -- routes and framing ----------------------------------------------------------------
def test_health_answers_pong(local_backend):
    response = requests.get(f"{local_backend.url}/health", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"message": "pong"}


def test_url_is_loopback_with_the_bound_port_and_no_trailing_slash(local_backend):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", local_backend.url)


@pytest.mark.parametrize("route", JOB_ROUTES)
def test_job_route_without_trailing_slash_answers_307_to_the_bare_slash_path(local_backend, route):
    response = requests.post(
        f"{local_backend.url}/v1/job/{route}",
        json={"creator": CREATOR},
        headers={"Authorization": TOKEN},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 307
    assert response.headers["Location"] == f"/v1/job/{route}/"


def test_unknown_path_answers_404_text(local_backend):
    response = requests.post(f"{local_backend.url}/v1/job/nothing/", timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/plain")


def test_get_on_a_job_route_answers_404_as_upstream(local_backend):
    """Upstream's router has no 405: a method a route does not have is not found."""
    response = requests.get(
        f"{local_backend.url}/v1/job/query/", headers={"Authorization": TOKEN}, timeout=10
    )
    assert (response.status_code, response.text) == (404, "404 page not found")


# -- Authorization (closed by default; the refusals are in test_access) ------------------
def test_attestation_replies_a_signed_url_to_the_token_holder(api):
    job = quick_job(api)
    reply = api.attestation(job["id"])
    assert reply["code"] == 0
    assert reply["signed_url"].startswith(api.base_url + "/")


# -- validation (upstream's words; the contract suite has each reply as recorded) -------
@pytest.mark.parametrize("creator", ["", "a" * 32, "al..ice", None])
def test_query_refuses_an_invalid_creator_in_upstreams_words(api, creator):
    body = {"page": 1, "page_size": 10, "creator": creator}
    assert assert_error(api.post("/v1/job/query/", body)) == "invalid parameter: Creator"


def test_a_creator_of_the_wrong_type_is_a_binding_error(api):
    body = {"page": 1, "page_size": 10, "creator": 7}
    assert_error(api.post("/v1/job/query/", body), "bind body failed, err=Mismatch type string")


def test_a_31_character_creator_is_valid(api):
    api.creator = "a" * 31
    assert api.query()["code"] == 0


@pytest.mark.parametrize("page", [0, -1, None])
def test_query_refuses_a_page_below_1_in_upstreams_words(api, page):
    body = {"page": page, "page_size": 10, "creator": CREATOR}
    assert assert_error(api.post("/v1/job/query/", body)) == "invalid parameter: Page"


@pytest.mark.parametrize("page", ["1", True, 1.5])
def test_a_page_that_is_not_an_integer_is_a_binding_error(api, page):
    body = {"page": page, "page_size": 10, "creator": CREATOR}
    assert_error(api.post("/v1/job/query/", body), "bind body failed, err=Mismatch type int64")


@pytest.mark.parametrize(("page_size", "listed"), [(0, 0), (None, 0), (101, 2), (-1, 2), (1, 1)])
def test_any_page_size_is_taken_as_upstream_takes_it(held_api, page_size, listed):
    """0 (or none) lists nothing, a negative size everything: upstream's rule is
    written ``$ > 0 || $ <= 100``, which every value passes."""
    for _ in range(2):
        held_api.submit_ok(QUICK_FAIL_ARCHIVE)
    body = {"page": 1, "page_size": page_size, "creator": CREATOR}
    reply = held_api.post("/v1/job/query/", body).json()
    assert (reply["code"], len(reply["jobs"]), reply["total"]) == (0, listed, 2)


@pytest.mark.parametrize("route", ["output/download", "attestation"])
@pytest.mark.parametrize("job_id", [0, -3, None])
def test_id_routes_refuse_an_id_below_1_in_upstreams_words(api, route, job_id):
    reply = api.post(f"/v1/job/{route}/", {"id": job_id, "creator": CREATOR})
    assert assert_error(reply) == "invalid parameter: ID"


@pytest.mark.parametrize(
    "filename", ["nb.py", "a" * 122 + ".ipynb", "..nb.ipynb", "sub/nb.ipynb", None]
)
def test_submit_takes_any_notebook_name_as_upstream(held_api, filename):
    """Upstream never runs its validation rules on the submit form."""
    reply = held_api.submit(QUICK_FAIL_ARCHIVE, filename)
    assert reply["code"] == 0, reply
    assert held_api.job(reply["uuid"])["jupyter_file_name"] == (filename or "")


@pytest.mark.parametrize("creator", ["a" * 32, "x..y", ""])
def test_submit_takes_any_creator_as_upstream(held_api, creator):
    reply = held_api.submit(QUICK_FAIL_ARCHIVE, creator=creator)
    assert reply["code"] == 0, reply


@pytest.mark.parametrize("envs", ["{", '[{"key": "A", "value": 3}]', "[1]", ""])
def test_submit_refuses_envs_that_do_not_bind(api, envs):
    reply = api.submit(QUICK_FAIL_ARCHIVE, envs=envs)
    assert reply["code"] == 10001
    assert reply["msg"].startswith(f"using '{envs}' to unmarshal field 'Envs: []*job.Env' failed")


@pytest.mark.parametrize(
    "envs", ['{"key": "A"}', '[{"key": "1A", "value": "v"}]', '[{"value": "x"}]', "null"]
)
def test_submit_takes_envs_upstream_takes(held_api, envs):
    assert held_api.submit(QUICK_FAIL_ARCHIVE, envs=envs)["code"] == 0


def test_submit_without_a_file_part_answers_500_as_upstreams_panic(api):
    response = requests.post(
        f"{api.base_url}/v1/job/submit/",
        files={"creator": (None, CREATOR), "filename": (None, "nb.ipynb")},
        headers=api.headers,
        timeout=30,
    )
    assert (response.status_code, response.content) == (500, b"")


def test_submit_refuses_a_file_that_is_not_gzip_in_upstreams_words(api):
    reply = api.submit(b"PK\x03\x04 this is a zip, not a gzip tar")
    assert reply == {"code": 10001, "msg": "failed to create gzip reader: gzip: invalid header"}
    assert api.query()["total"] == 0


def test_submit_refuses_a_gzip_that_is_not_a_tar_and_makes_no_job(api):
    reply = api.submit(gzip.compress(b"hello, not a tar\n" * 40))
    assert reply == {
        "code": 10001,
        "msg": "failed to read tar entry: archive/tar: invalid tar header",
    }
    assert api.query()["total"] == 0


def test_submit_of_a_body_that_is_not_multipart_answers_500_as_upstreams_panic(api):
    response = requests.post(
        f"{api.base_url}/v1/job/submit/", json={"creator": CREATOR}, headers=api.headers, timeout=10
    )
    assert (response.status_code, response.content) == (500, b"")


def test_json_route_refuses_a_body_that_is_not_json(api):
    response = requests.post(
        f"{api.base_url}/v1/job/query/", data=b"page=1", headers=api.headers, timeout=10
    )
    assert_error(response, "bind body failed, err=")


# -- size limit --------------------------------------------------------------------------
def test_an_archive_over_the_size_limit_is_refused_with_413(start_backend):
    backend = start_backend(max_archive_size=10_000)
    archive = workspace_archive({"nb.ipynb": notebook_bytes(), "blob.bin": os.urandom(20_000)})
    assert len(archive) > 10_000  # random bytes do not compress
    response = requests.post(
        f"{backend.url}/v1/job/submit/",
        files={"file": ("workspace.tar.gz", archive, "application/gzip")},
        data={"creator": CREATOR, "filename": "nb.ipynb", "envs": "[]"},
        headers={"Authorization": TOKEN},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.headers["Content-Type"].startswith("text/plain")
    assert Api(backend.url).query()["total"] == 0
    assert list((backend.data_dir / "uploads").iterdir()) == []


def test_a_body_announced_far_over_the_limit_is_refused_before_it_is_sent(start_backend):
    backend = start_backend(max_archive_size=10_000)
    port = int(backend.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            request_head(port) + b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 7000000000\r\n\r\n"
        )
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413 ")


def request_head(port: int) -> bytes:
    """The start of a raw submit request the access rules let through."""
    return (
        f"POST /v1/job/submit/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {TOKEN}\r\n"
    ).encode()


def wait_until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_an_upload_is_streamed_to_disk_and_a_cut_off_one_leaves_nothing(local_backend, api):
    uploads = local_backend.data_dir / "uploads"
    port = int(local_backend.url.rsplit(":", 1)[1])
    head = (
        b'--xyz\r\nContent-Disposition: form-data; name="creator"\r\n\r\nalice\r\n'
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="w.tar.gz"\r\n'
        b"Content-Type: application/gzip\r\n\r\n\x1f\x8b"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            request_head(port) + b"Content-Type: multipart/form-data; boundary=xyz\r\n"
            b"Content-Length: 5000000\r\n\r\n" + head + os.urandom(300_000)
        )
        # the archive so far is on disk while the body is still incomplete
        wait_until(lambda: any(p.stat().st_size >= 300_000 for p in uploads.iterdir()))
    wait_until(lambda: not any(uploads.iterdir()))
    assert api.query()["total"] == 0


# -- the in-progress limit ---------------------------------------------------------------
def test_ten_concurrent_submits_get_exactly_three_accepted(start_backend):
    backend = start_backend(max_running=1)
    api = Api(backend.url)
    archive = workspace_archive({"nb.ipynb": notebook_bytes("import time; time.sleep(60)")})
    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(lambda _: api.submit(archive), range(10)))
    accepted = [reply for reply in replies if reply["code"] == 0]
    refused = [reply for reply in replies if reply["code"] != 0]
    assert len(accepted) == 3
    assert len(refused) == 7
    assert all(reply["code"] == 10001 and LIMIT_MSG in reply["msg"] for reply in refused)
    assert api.query()["total"] == 3


def test_the_limit_counts_only_the_creators_own_in_progress_jobs(start_backend):
    backend = start_backend(max_running=1)
    alice, bob = Api(backend.url, "alice"), Api(backend.url, "bob")
    archive = workspace_archive({"nb.ipynb": notebook_bytes("import time; time.sleep(60)")})
    for _ in range(3):
        alice.submit_ok(archive)
    assert LIMIT_MSG in alice.submit(archive)["msg"]
    assert bob.submit(archive)["code"] == 0


def test_finished_jobs_do_not_count_against_the_limit(api):
    for _ in range(4):
        quick_job(api)
    assert api.submit(QUICK_FAIL_ARCHIVE)["code"] == 0


# -- query -------------------------------------------------------------------------------
def test_query_pages_the_creators_jobs_oldest_first_with_the_total(api):
    """As upstream's query, whose ORDER BY never reaches the SQL: pages come in id order."""
    # each ends before the next is sent: four at once would pass the limit of 3 in progress
    uuids = []
    for i in range(4):
        uuids.append(api.submit_ok(QUICK_FAIL_ARCHIVE, f"nb{i}.ipynb"))
        api.wait(uuids[-1], TERMINAL)
    Api(api.base_url, "bob").submit_ok(QUICK_FAIL_ARCHIVE)
    reply = api.query(page=1, page_size=3)
    assert reply["code"] == 0 and reply["msg"] == "Success"
    assert reply["total"] == 4
    assert [job["uuid"] for job in reply["jobs"]] == uuids[:3]
    assert [job["uuid"] for job in api.query(page=2, page_size=3)["jobs"]] == [uuids[3]]
    assert [job["id"] for job in reply["jobs"]] == [1, 2, 3]


def test_a_job_has_exactly_the_contract_keys_and_utc_timestamps(api):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    job = quick_job(api)
    assert set(job) == JOB_KEYS
    assert isinstance(job["id"], int) and job["id"] > 0
    assert job["creator"] == CREATOR and job["jupyter_file_name"] == "nb.ipynb"
    for key in ("created_at", "updated_at"):
        stamp = datetime.strptime(job[key], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
        assert before - timedelta(seconds=1) <= stamp <= datetime.now(timezone.utc)


def test_a_job_without_its_notebook_finishes_5_without_output_as_upstreams(api):
    """Upstream's build only copies files; its executor's nbconvert then fails and the
    VM stops: Finished, with no output and no token."""
    job = quick_job(api)
    assert job["job_status"] == 5
    assert job["status_reason"] == (
        "the executor failed, no output: the notebook 'nb.ipynb' is not at the top of the "
        "workspace archive (it must sit directly in the archive's top-level folder)"
    )


# -- delete ------------------------------------------------------------------------------
def test_a_deleted_job_leaves_the_list_and_its_total(api):
    job = quick_job(api)
    assert api.delete(job["uuid"]) == {"code": 0, "msg": "Success"}
    assert api.query() == {"code": 0, "msg": "Success", "jobs": [], "total": 0}


def test_a_deleted_job_keeps_its_output_token_and_workspace_in_storage(api, local_backend):
    job_uuid = api.submit_ok(workspace_archive({"nb.ipynb": notebook_bytes("print('kept')")}))
    job = api.wait(job_uuid, TERMINAL)
    assert job["job_status"] == 5
    output = requests.get(api.download(job["id"])["signed_url"], timeout=10)
    token = requests.get(api.attestation(job["id"])["signed_url"], timeout=10)
    assert api.delete(job_uuid) == {"code": 0, "msg": "Success"}
    outputs = local_backend.data_dir / "outputs" / job_uuid
    assert (outputs / f"out-{job_uuid}-nb.ipynb").read_bytes() == output.content
    assert (outputs / f"{job_uuid}-token").read_text() == token.text
    assert (local_backend.data_dir / "storage" / "alice" / "alice-workspace.tar.gz").is_file()
    # soft: the job's own routes no longer find it
    assert_error(
        api.post("/v1/job/output/download/", {"id": job["id"], "creator": CREATOR}),
        "record not found",
    )


def test_a_deleted_running_job_keeps_running_and_finishes_untracked(local_backend, api, gate):
    backend = local_backend
    job_uuid = api.submit_ok(workspace_archive({"nb.ipynb": gated_notebook(gate, "ran")}))
    api.wait(job_uuid, {4})
    assert api.delete(job_uuid) == {"code": 0, "msg": "Success"}
    assert api.query()["total"] == 0
    gate.touch()  # the run goes on: it ends and publishes its output all the same
    output = backend.data_dir / "outputs" / job_uuid / f"out-{job_uuid}-nb.ipynb"
    wait_until(output.is_file, timeout=60)
    assert "ran" in output.read_text()
    assert api.query()["total"] == 0


def test_delete_of_an_unknown_uuid_succeeds(api):
    assert api.delete("no-such-uuid") == {"code": 0, "msg": "Success"}


def test_delete_by_another_creator_leaves_the_job_its_run_and_its_output(api, gate):
    """Upstream's delete matches uuid and creator; another creator's matches nothing and
    is answered Success all the same (the API never says "not found" on delete)."""
    mallory = Api(api.base_url, "mallory")
    job_uuid = api.submit_ok(workspace_archive({"nb.ipynb": gated_notebook(gate, "mine")}))
    api.wait(job_uuid, {4})
    assert mallory.delete(job_uuid) == {"code": 0, "msg": "Success"}
    assert api.job(job_uuid)["job_status"] == 4
    gate.touch()
    job = api.wait(job_uuid, TERMINAL)
    assert job["job_status"] == 5
    output = requests.get(api.download(job["id"])["signed_url"], timeout=10)
    assert output.status_code == 200 and "mine" in output.text


# -- output download and attestation -----------------------------------------------------
def test_output_download_replies_a_signed_url_and_upstreams_file_name(api):
    job = quick_job(api)
    reply = api.download(job["id"])
    assert reply["code"] == 0 and reply["msg"] == "Success"
    assert reply["filename"] == f"out-{job['id']}-nb.ipynb"
    assert reply["signed_url"].startswith(api.base_url + "/")


@pytest.mark.parametrize("route", ["output/download", "attestation"])
def test_unknown_or_foreign_job_id_is_an_error_reply(api, route):
    job = quick_job(api)
    assert_error(api.post(f"/v1/job/{route}/", {"id": job["id"] + 100, "creator": CREATOR}))
    msg = assert_error(api.post(f"/v1/job/{route}/", {"id": job["id"], "creator": "bob"}))
    assert "doesn't exist" in msg


def test_signed_url_of_an_output_that_does_not_exist_answers_404(api):
    job = quick_job(api)  # failed in status 2: it has no output and no token
    assert requests.get(api.download(job["id"])["signed_url"], timeout=10).status_code == 404
    assert requests.get(api.attestation(job["id"])["signed_url"], timeout=10).status_code == 404


# -- OIDC discovery ----------------------------------------------------------------------
def test_discovery_document_names_the_issuer_and_a_served_jwks_uri(local_backend):
    config = requests.get(
        f"{local_backend.url}/.well-known/openid-configuration", timeout=10
    ).json()
    assert config["issuer"] == local_backend.url
    keys = requests.get(config["jwks_uri"], timeout=10).json()["keys"]
    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and keys[0]["kid"]


def test_public_url_is_the_issuer_and_the_base_of_signed_urls(start_backend):
    backend = start_backend(public_url="http://manatee.example:8901/")
    api = Api(backend.url)
    config = requests.get(f"{backend.url}/.well-known/openid-configuration", timeout=10).json()
    assert config["issuer"] == "http://manatee.example:8901"
    assert config["jwks_uri"].startswith("http://manatee.example:8901/")
    job = quick_job(api)
    assert api.download(job["id"])["signed_url"].startswith("http://manatee.example:8901/storage/")
