"""Jobs really run: stage 2, outputs, tokens, signed URLs, timeouts, kills.

One module-scoped backend runs two notebooks in parallel (a stage-2 one and one with a
failing cell); most tests here inspect those two finished jobs, so the suite pays for
few kernel starts.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import re
import time
import uuid as uuid_module
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import nbformat
import pytest
import requests
from google.auth import jwt
from lb_support import (
    SLEEPING_NOTEBOOK,
    TOKEN,
    Api,
    jwks_certs,
    notebook_bytes,
    processes_under,
    wait_no_processes_under,
    workspace_archive,
)

from jupyterlab_manatee.local_backend import LocalBackend
from jupyterlab_manatee.local_backend.signing import UrlSigner

AUDIENCE = "https://research.tiktok.com/"

STAGE2_NOTEBOOK = notebook_bytes(
    "import os, pathlib\n"
    "beside = pathlib.Path('data.txt').read_text().strip()\n"
    "real = (pathlib.Path(os.environ['MANATEE_STAGE2_DATA_DIR']) / 'real.csv').read_text()\n"
    "print(f\"stage={os.environ['EXECUTION_STAGE']} beside={beside} real={real.strip()}"
    " flag={os.environ['MY_FLAG']} secret={os.environ['STAGE2_SECRET']}\")\n"
    "print('cwd=' + os.getcwd())",
    "import ipykernel, json\n"
    "info = json.loads(ipykernel.get_connection_info())\n"
    "print('transport=' + info['transport'] + ' ip=' + info['ip'])",
    "print('pip_version_check_disabled=' + os.environ.get('PIP_DISABLE_PIP_VERSION_CHECK', ''))",
)
FAILING_NOTEBOOK = notebook_bytes(
    "print('before')", "raise ValueError('boom in cell 2')", "print('after')"
)


def token_header(token: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


class Ran:
    """The two jobs the module's backend ran, and what was submitted for them."""

    backend: LocalBackend
    api: Api
    stage2_archive: bytes
    stage2: dict[str, Any]
    failing: dict[str, Any]


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> Iterator[Ran]:
    root = tmp_path_factory.mktemp("execution")
    real = root / "owner-data"
    real.mkdir()
    (real / "real.csv").write_text("owner-data\n")
    backend = LocalBackend(
        root / "data",
        token=TOKEN,
        reconcile_interval=0,
        max_running=2,
        stage2_env={"STAGE2_SECRET": "s3"},
        stage2_data_dir=real,
    )
    with backend.running_in_thread():
        result = Ran()
        result.backend = backend
        result.api = api = Api(backend.url)
        result.stage2_archive = workspace_archive(
            {"nb.ipynb": STAGE2_NOTEBOOK, "data.txt": b"beside-the-notebook\n"}
        )
        stage2 = api.submit_read(result.stage2_archive, envs=[{"key": "MY_FLAG", "value": "on"}])
        failing = api.submit_ok(workspace_archive({"fails.ipynb": FAILING_NOTEBOOK}), "fails.ipynb")
        result.stage2 = api.wait(stage2, {2, 5, 6, 7, 8, 9}, timeout=90)
        result.failing = api.wait(failing, {2, 5, 6, 7, 8, 9}, timeout=90)
        yield result


def download(ran: Ran, job: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    reply = ran.api.download(job["id"])
    response = requests.get(reply["signed_url"], timeout=30)
    assert response.status_code == 200, response.text
    return reply, response.content


def token_of(ran: Ran, job: dict[str, Any]) -> str:
    reply = ran.api.attestation(job["id"])
    response = requests.get(reply["signed_url"], timeout=30)
    assert response.status_code == 200, response.text
    return response.text


def outputs_text(notebook: bytes) -> list[str]:
    nb = nbformat.reads(notebook.decode("utf-8"), as_version=4)
    return [json.dumps(cell.get("outputs", [])) for cell in nb.cells]


# -- running in stage 2 ------------------------------------------------------------------
def test_a_notebook_reading_a_file_beside_it_runs_to_finished(ran):
    assert ran.stage2["job_status"] == 5, ran.stage2
    assert ran.stage2["status_reason"] == ""


def test_the_downloaded_output_holds_the_stage_2_result(ran):
    reply, content = download(ran, ran.stage2)
    assert reply["filename"] == f"out-{ran.stage2['id']}-nb.ipynb"
    text = outputs_text(content)[0]
    assert "stage=2 beside=beside-the-notebook real=owner-data flag=on secret=s3" in text


def test_pip_in_a_stage_2_run_does_not_look_for_a_newer_pip(ran):
    # else `!pip install` leaves "A new release of pip is available" in the output
    _, content = download(ran, ran.stage2)
    assert "pip_version_check_disabled=1" in outputs_text(content)[2]


def test_the_notebook_ran_with_the_workspace_as_working_directory(ran):
    _, content = download(ran, ran.stage2)
    expected = ran.backend.runs_root / ran.stage2["uuid"] / "workspace"
    assert f"cwd={expected}" in outputs_text(content)[0]


def test_the_kernel_speaks_over_unix_sockets_in_a_private_folder_under_tmp(ran):
    # not TCP on 127.0.0.1: jobs share the machine's network, and a free port one
    # executor picked could be taken by another job's kernel before its own kernel binds it
    _, content = download(ran, ran.stage2)
    printed = json.loads(outputs_text(content)[1])[0]["text"]
    assert re.fullmatch(r"transport=ipc ip=/tmp/manatee-kernel-[a-z0-9_]{8}/kernel\n", printed)


def test_the_workspace_lies_outside_the_data_directory(ran):
    workspace = ran.backend.runs_root / ran.stage2["uuid"] / "workspace"
    assert ran.backend.data_dir not in workspace.parents
    assert ran.backend.data_dir.parent not in workspace.parents


def test_a_failing_cell_is_recorded_and_the_job_still_finishes(ran):
    assert ran.failing["job_status"] == 5, ran.failing
    _, content = download(ran, ran.failing)
    before, error, after = outputs_text(content)
    assert "before" in before
    assert "ValueError" in error and "boom in cell 2" in error
    assert "after" in after


def test_the_workspace_and_archive_are_removed_after_the_run(ran):
    job_dir = ran.backend.data_dir / "jobs" / ran.stage2["uuid"]
    assert [p.name for p in job_dir.iterdir()] == ["executor.log"]
    assert not (ran.backend.runs_root / ran.stage2["uuid"]).exists()


# -- the attestation token ---------------------------------------------------------------
def test_the_token_signature_verifies_against_the_served_jwks(ran):
    token = token_of(ran, ran.stage2)
    claims = jwt.decode(token, certs=jwks_certs(ran.backend.url), audience=AUDIENCE)
    assert claims["iss"] == ran.backend.url


def test_the_token_header_names_the_jwks_key(ran):
    header = token_header(token_of(ran, ran.stage2))
    assert header["alg"] == "RS256"
    assert header["kid"] in jwks_certs(ran.backend.url)


def test_the_token_nonce_is_the_md5_of_the_downloaded_output(ran):
    _, content = download(ran, ran.stage2)
    claims = jwt.decode(token_of(ran, ran.stage2), verify=False)
    assert claims["eat_nonce"] == hashlib.md5(content).hexdigest()


def test_the_token_says_it_is_a_local_run_without_a_tee(ran):
    claims = jwt.decode(token_of(ran, ran.stage2), verify=False)
    assert claims["swname"] == "LOCAL_NO_TEE"
    assert claims["dbgstat"] == "enabled"
    assert claims["secboot"] is False
    assert claims["hwmodel"] == "NONE"
    assert claims["submods"]["confidential_space"]["support_attributes"] == []


def test_the_token_lives_one_hour(ran):
    claims = jwt.decode(token_of(ran, ran.stage2), verify=False)
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] == claims["iat"] + 3600
    assert abs(claims["iat"] - time.time()) < 300


def test_the_token_binds_the_submitted_archive_and_names_the_job(ran):
    claims = jwt.decode(token_of(ran, ran.stage2), verify=False)
    digest = hashlib.sha256(ran.stage2_archive).hexdigest()
    job_uuid = ran.stage2["uuid"]
    assert claims["submods"]["container"]["image_digest"] == f"sha256:{digest}"
    assert claims["submods"]["container"]["image_reference"] == (
        f"localhost/manatee-local/alice-{job_uuid}@sha256:{digest}"
    )
    assert claims["submods"]["gce"]["instance_name"] == f"alice-{job_uuid}"
    assert claims["submods"]["container"]["env_override"] == {"MY_FLAG": "on"}


def test_the_token_names_the_default_local_deployment(ran):
    claims = jwt.decode(token_of(ran, ran.stage2), verify=False)
    job_uuid = ran.stage2["uuid"]
    assert claims["google_service_accounts"] == [
        "manatee-local-tee@manatee-local.iam.gserviceaccount.com"
    ]
    assert claims["sub"] == (
        "https://www.googleapis.com/compute/v1/projects/manatee-local/zones/local/"
        f"instances/alice-{job_uuid}"
    )
    gce = claims["submods"]["gce"]
    assert gce == {
        "project_id": "manatee-local",
        "project_number": "367753912437",
        "zone": "local",
        "instance_id": str(uuid_module.UUID(job_uuid).int >> 64),
        "instance_name": f"alice-{job_uuid}",
    }


def test_the_token_carries_the_confidential_space_profile_claims(ran):
    claims = jwt.decode(token_of(ran, ran.stage2), verify=False)
    assert claims["eat_profile"] == (
        "https://cloud.google.com/confidential-computing/confidential-space/docs/"
        "reference/token-claims"
    )
    assert claims["oemid"] == 11129
    assert claims["swversion"] == [importlib.metadata.version("jupyterlab_manatee")]


def test_the_token_audience_is_what_the_real_flow_asks_for(ran):
    claims = jwt.decode(token_of(ran, ran.stage2), verify=False)
    assert claims["aud"] == AUDIENCE


# -- signed URLs -------------------------------------------------------------------------
def test_a_signed_url_is_valid_for_one_hour(ran):
    url = ran.api.download(ran.stage2["id"])["signed_url"]
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    assert abs(expires - (time.time() + 3600)) < 60


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.mark.parametrize("part", ["signature", "expires", "path"])
def test_a_tampered_signed_url_is_refused_with_403(ran, part):
    url = ran.api.download(ran.stage2["id"])["signed_url"]
    if part == "signature":
        signature = parse_qs(urlsplit(url).query)["signature"][0]
        url = _with_query(url, signature=("0" if signature[0] != "0" else "1") + signature[1:])
    elif part == "expires":
        expires = int(parse_qs(urlsplit(url).query)["expires"][0])
        url = _with_query(url, expires=str(expires + 3600))
    else:  # the output's signature presented for another file (the token)
        token_url = ran.api.attestation(ran.stage2["id"])["signed_url"]
        url = token_url.split("?")[0] + "?" + urlsplit(url).query
    response = requests.get(url, timeout=10)
    assert response.status_code == 403, (url, response.text)


def test_an_unsigned_storage_url_is_refused_with_403(ran):
    url = ran.api.download(ran.stage2["id"])["signed_url"].split("?")[0]
    assert requests.get(url, timeout=10).status_code == 403


def test_an_expired_signed_url_is_refused_with_403(ran):
    secret = (ran.backend.data_dir / "url-signing.key").read_bytes().strip()
    key = f"outputs/{ran.stage2['uuid']}/out-{ran.stage2['uuid']}-nb.ipynb"
    expired = UrlSigner(secret, ran.backend.url).sign(key, ttl=-5)
    fresh = UrlSigner(secret, ran.backend.url).sign(key)
    assert requests.get(fresh, timeout=10).status_code == 200  # same secret, not expired
    response = requests.get(expired, timeout=10)
    assert response.status_code == 403
    assert "expired" in response.text


# -- timeouts, kills, launch failures (each its own backend) -----------------------------
def test_a_job_past_its_timeout_fails_with_status_7_and_is_killed(start_backend):
    backend = start_backend(job_timeout=4)
    api = Api(backend.url)
    job_uuid = api.submit_ok(workspace_archive({"nb.ipynb": SLEEPING_NOTEBOOK}))
    job = api.wait(job_uuid, {2, 5, 6, 7, 8, 9}, timeout=30)
    assert job["job_status"] == 7
    assert job["status_reason"] == "timed out after 4 s"
    wait_no_processes_under(backend.runs_root / job_uuid)


def test_deleting_a_running_job_leaves_its_processes_running(start_backend):
    """Soft delete, as upstream: the run is neither stopped nor tracked any more."""
    backend = start_backend()
    api = Api(backend.url)
    job_uuid = api.submit_ok(workspace_archive({"nb.ipynb": SLEEPING_NOTEBOOK}))
    api.wait(job_uuid, {4}, timeout=30)
    before = processes_under(backend.runs_root / job_uuid)
    assert before
    assert api.delete(job_uuid) == {"code": 0, "msg": "Success"}
    assert api.query()["total"] == 0
    assert processes_under(backend.runs_root / job_uuid) == before


def test_a_kernel_that_cannot_start_finishes_5_without_output(start_backend):
    """As upstream, where the kernel starts inside the VM: nbconvert fails, the VM stops,
    the reconciler sees it TERMINATED and the job is Finished (5) with no output."""
    backend = start_backend(kernel_name="no-such-kernel")
    api = Api(backend.url)
    job_uuid = api.submit_ok(workspace_archive({"nb.ipynb": notebook_bytes("print(1)")}))
    job = api.wait(job_uuid, {2, 5, 6, 7, 8, 9}, timeout=30)
    assert job["job_status"] == 5
    assert job["status_reason"].startswith("the kernel 'no-such-kernel' could not start, no output")
    download = api.download(job["id"])["signed_url"]
    assert requests.get(download, timeout=10).status_code == 404


def test_jobs_past_max_running_wait_in_status_0(start_backend):
    backend = start_backend(max_running=1)
    api = Api(backend.url)
    archive = workspace_archive({"nb.ipynb": SLEEPING_NOTEBOOK})
    first = api.submit_ok(archive)
    api.wait(first, {4}, timeout=30)
    second = api.submit_ok(archive)
    time.sleep(1.0)
    assert api.job(second)["job_status"] == 0
    assert api.job(first)["job_status"] == 4
