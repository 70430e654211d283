"""Stop the backend in the middle of a job and start it again on the same data directory."""

from __future__ import annotations

import pytest
import requests
from google.auth import jwt
from lb_support import (
    SLEEPING_NOTEBOOK,
    TERMINAL,
    TOKEN,
    Api,
    jwks_certs,
    notebook_bytes,
    wait_no_processes_under,
    workspace_archive,
)

from jupyterlab_manatee.local_backend import INTERRUPTED_REASON, DataDirInUse, LocalBackend


def one_at_a_time(data) -> LocalBackend:
    return LocalBackend(data, max_running=1, token=TOKEN, reconcile_interval=0)


def test_a_restart_keeps_finished_work_fails_the_running_job_and_runs_the_waiting_one(tmp_path):
    data = tmp_path / "data"
    with LocalBackend(
        data, max_running=1, token=TOKEN, reconcile_interval=0
    ).running_in_thread() as first:
        api = Api(first.url)
        done = api.submit_ok(workspace_archive({"nb.ipynb": notebook_bytes("print('kept')")}))
        done_job = api.wait(done, TERMINAL, timeout=60)
        assert done_job["job_status"] == 5
        output_before = requests.get(api.download(done_job["id"])["signed_url"], timeout=10).content
        token_before = requests.get(api.attestation(done_job["id"])["signed_url"], timeout=10).text
        running = api.submit_ok(workspace_archive({"nb.ipynb": SLEEPING_NOTEBOOK}))
        api.wait(running, {4}, timeout=60)
        waiting = api.submit_ok(workspace_archive({"nb.ipynb": notebook_bytes("print('later')")}))
        assert api.job(waiting)["job_status"] == 0

    wait_no_processes_under(first.runs_root / running)
    with LocalBackend(
        data, max_running=1, token=TOKEN, reconcile_interval=0
    ).running_in_thread() as second:
        api = Api(second.url)
        interrupted = api.job(running)
        assert interrupted["job_status"] == 7
        assert interrupted["status_reason"] == INTERRUPTED_REASON
        assert api.wait(waiting, TERMINAL, timeout=60)["job_status"] == 5

        assert api.job(done) == done_job
        output_after = requests.get(api.download(done_job["id"])["signed_url"], timeout=10)
        assert output_after.content == output_before
        token_after = requests.get(api.attestation(done_job["id"])["signed_url"], timeout=10).text
        assert token_after == token_before
        # the same key signs across restarts: the old token verifies against the new JWKS
        jwt.decode(token_after, certs=jwks_certs(second.url), audience=second.audience)
    assert not [p for p in data.rglob("*") if p.name.startswith(".tmp-")]


def test_leftovers_of_a_hard_stop_are_swept_at_start(tmp_path):
    data = tmp_path / "data"
    with LocalBackend(data, token=TOKEN).running_in_thread():
        pass
    (data / "uploads" / ".tmp-half.tar.gz").write_bytes(b"half an upload")
    (data / "archives").mkdir()  # per-job archives of an older version
    (data / "archives" / "no-such-job.tar.gz").write_bytes(b"orphan")
    (data / "storage" / "alice").mkdir()
    (data / "storage" / "alice" / ".tmp-half-alice-workspace.tar.gz").write_bytes(b"half")
    (data / "outputs" / "no-such-job").mkdir()
    (data / "jobs" / "no-such-job" / "workspace").mkdir(parents=True)
    with LocalBackend(data, token=TOKEN).running_in_thread():
        assert list((data / "uploads").iterdir()) == []
        assert not (data / "archives").exists()
        assert list((data / "storage" / "alice").iterdir()) == []
        assert list((data / "outputs").iterdir()) == []
        assert list((data / "jobs").iterdir()) == []


def test_a_second_backend_on_the_same_data_directory_is_refused(tmp_path):
    with LocalBackend(tmp_path / "data", token=TOKEN).running_in_thread():
        with pytest.raises(DataDirInUse):
            with LocalBackend(tmp_path / "data", token=TOKEN).running_in_thread():
                pass


def test_secrets_in_the_data_directory_are_private(tmp_path):
    data = tmp_path / "data"
    with LocalBackend(data, token=TOKEN).running_in_thread():
        pass
    assert data.stat().st_mode & 0o777 == 0o700
    for name in ("url-signing.key", "token-signing-key.pem", "manatee.db", "api-token"):
        assert (data / name).stat().st_mode & 0o777 == 0o600, name
