"""Runs as the real API's reconciler and executor would end them (docs/operators/real-api.md):
the time limit counts from the job's creation; a notebook the executor cannot find ends
5 without output; any env key reaches the notebook."""

from __future__ import annotations

import time

import requests
from lb_support import CREATOR, TERMINAL, Api, notebook_bytes, workspace_archive

from jupyterlab_manatee.local_backend import LocalBackend
from jupyterlab_manatee.local_backend.runner import DEFAULT_JOB_TIMEOUT


def test_the_default_time_limit_is_upstreams_six_hours(tmp_path):
    assert DEFAULT_JOB_TIMEOUT == 6 * 3600
    assert LocalBackend(tmp_path / "data")._config.job_timeout == 6 * 3600


def test_a_job_waiting_past_its_time_limit_fails_7_without_running(start_backend):
    backend = start_backend(job_timeout=2)
    api = Api(backend.url)
    backend.hold_builds()
    job_uuid = api.submit_ok(workspace_archive({"nb.ipynb": notebook_bytes("print(1)")}))
    time.sleep(3)  # past the limit, counted from the job's creation (whole seconds)
    backend.release_builds()
    job = api.wait(job_uuid, TERMINAL, timeout=30)
    assert (job["job_status"], job["status_reason"]) == (7, "timed out after 2 s")
    assert not (backend.runs_root / job_uuid).exists()  # never unpacked


def test_a_notebook_name_with_a_folder_finishes_5_without_output(api):
    """Upstream's image copies only the workspace's top level: the executor never finds
    ``sub/nb.ipynb``, even when the archive has it."""
    archive = workspace_archive({"sub/nb.ipynb": notebook_bytes("print(1)")})
    job = api.wait(api.submit_ok(archive, "sub/nb.ipynb"), TERMINAL, timeout=60)
    assert job["job_status"] == 5
    assert job["status_reason"].startswith("the executor failed, no output: the notebook")
    reply = api.download(job["id"])
    assert reply["filename"] == f"out-{job['id']}-sub/nb.ipynb"
    assert requests.get(reply["signed_url"], timeout=10).status_code == 404


def test_an_env_key_that_is_not_a_variable_name_reaches_the_notebook(api):
    code = "import os; print(os.environ['1BAD'], os.environ.get('A'))"
    archive = workspace_archive({"nb.ipynb": notebook_bytes(code)})
    envs = [{"key": "1BAD", "value": "passed"}, {"key": "", "value": "dropped"}]
    job = api.wait(api.submit_ok(archive, envs=envs), TERMINAL, timeout=90)
    assert job["job_status"] == 5, job
    output = requests.get(api.download(job["id"])["signed_url"], timeout=10).text
    assert "passed None" in output
    assert CREATOR == job["creator"]
