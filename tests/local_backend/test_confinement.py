"""A job cannot reach the backend's secrets: the signing keys, the URL-signing secret,
the backend's environment (its own, and its process's through /proc).

As root the backend confines each job (a user of its own, PID, IPC and mount namespaces
of its own, the data directory covered); these tests run a real hostile notebook through
a real backend and read what it got. Not root, the backend cannot confine jobs and says
so. How jobs are kept apart from each other: test_jobs_apart.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
import requests
from lb_support import TERMINAL, TOKEN, Api, notebook_bytes, workspace_archive

from jupyterlab_manatee.local_backend import LocalBackend
from jupyterlab_manatee.local_backend.isolation import DEFAULT_JOB_IDS, IsolationError, plan
from jupyterlab_manatee.local_backend.runner import collect_output

as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root can confine jobs (CI runs as root)"
)
SECRET_NAME = "MANATEE_TEST_BACKEND_SECRET"
SECRET_VALUE = "backend-secret-7f3a91c2d4"


class Hostile:
    backend: LocalBackend
    output: bytes
    cells: list[list[dict]]


def hostile_notebook(data_dir: Path, backend_pid: int) -> bytes:
    """One cell per attempt; each prints what it got (or fails with the error)."""
    return notebook_bytes(
        f"print(open({str(data_dir / 'token-signing-key.pem')!r}, 'rb').read())",
        f"print(open({str(data_dir / 'url-signing.key')!r}, 'rb').read())",
        f"import os\nprint('secret:', os.environ.get({SECRET_NAME!r}))",
        f"print(open('/proc/{backend_pid}/environ', 'rb').read())",
        # the kernel's parent is the executor
        "print(open(f'/proc/{os.getppid()}/environ', 'rb').read())",
        f"print('listing:', os.listdir({str(data_dir)!r}))",
        "print('uid:', os.getuid(), 'gid:', os.getgid(), 'groups:', os.getgroups())",
    )


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    if os.geteuid() != 0:
        pytest.skip("only root can confine jobs (CI runs as root)")
    # Like ./dev run's <checkout>/.manatee-local: a data directory whose parent others may
    # enter (pytest's own temp folder is private to root, which would hide it anyway), in
    # no folder all users share (each job has its own /tmp, which would hide it too).
    parent = Path(tempfile.mkdtemp(prefix="manatee-confinement-", dir="/run"))
    parent.chmod(0o755)
    data_dir = parent / "data"
    os.environ[SECRET_NAME] = SECRET_VALUE
    try:
        backend = LocalBackend(data_dir, token=TOKEN, reconcile_interval=0)
        with backend.running_in_thread():
            api = Api(backend.url)
            archive = workspace_archive(
                {"nb.ipynb": hostile_notebook(backend.data_dir, os.getpid())}
            )
            job = api.wait(api.submit_ok(archive), TERMINAL, timeout=90)
            assert job["job_status"] == 5, job
            result = Hostile()
            result.backend = backend
            result.output = requests.get(api.download(job["id"])["signed_url"], timeout=10).content
            nb = nbformat.reads(result.output.decode("utf-8"), as_version=4)
            result.cells = [cell.outputs for cell in nb.cells]
            yield result
    finally:
        del os.environ[SECRET_NAME]
        shutil.rmtree(parent, ignore_errors=True)


def error_name(outputs: list[dict]) -> str | None:
    errors = [out["ename"] for out in outputs if out.get("output_type") == "error"]
    return errors[0] if errors else None


def printed(outputs: list[dict]) -> str:
    return "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")


@as_root
def test_a_job_cannot_read_the_token_signing_key(hostile):
    assert error_name(hostile.cells[0]) in {"FileNotFoundError", "PermissionError"}
    key = (hostile.backend.data_dir / "token-signing-key.pem").read_text()
    body = "".join(key.strip().splitlines()[1:-1])
    assert body[:40] not in hostile.output.decode("utf-8").replace("\\n", "")


@as_root
def test_a_job_cannot_read_the_url_signing_secret(hostile):
    assert error_name(hostile.cells[1]) in {"FileNotFoundError", "PermissionError"}
    secret = (hostile.backend.data_dir / "url-signing.key").read_bytes().strip()
    assert secret not in hostile.output


@as_root
def test_a_job_does_not_get_the_backends_environment(hostile):
    assert printed(hostile.cells[2]) == "secret: None\n"


@as_root
def test_a_job_cannot_read_its_executors_environment(hostile):
    # the executor is non-dumpable (what its environment holds: test_jobs_apart.py)
    assert error_name(hostile.cells[4]) == "PermissionError", hostile.cells[4]
    assert SECRET_VALUE not in hostile.output.decode("utf-8")


@as_root
def test_a_job_cannot_read_the_backend_process_environment(hostile):
    # the backend is not in the job's PID namespace; if a pid matched, it is not root's
    assert error_name(hostile.cells[3]) in {"FileNotFoundError", "PermissionError"}
    assert SECRET_VALUE not in hostile.output.decode("utf-8")


@as_root
def test_a_job_sees_the_data_directory_as_an_empty_folder(hostile):
    assert printed(hostile.cells[5]) == "listing: []\n"


@as_root
def test_a_job_runs_as_a_user_of_its_own_not_nobody(hostile):
    # an id of the default range (200000-200999; the lowest free one, which another
    # backend on this machine may hold), as user and group, no supplementary groups
    assert DEFAULT_JOB_IDS == range(200_000, 201_000)
    found = re.fullmatch(r"uid: (\d+) gid: (\d+) groups: \[\]\n", printed(hostile.cells[6]))
    assert found, printed(hostile.cells[6])
    uid, gid = int(found[1]), int(found[2])
    assert uid == gid and uid in DEFAULT_JOB_IDS


# -- collecting the executed notebook from the job's folder ------------------------------
def test_collecting_refuses_a_link_to_a_backend_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"KEY")
    (tmp_path / "executed.ipynb").symlink_to(secret)
    with pytest.raises(RuntimeError, match="cannot be collected"):
        collect_output(tmp_path / "executed.ipynb", tmp_path / "out", os.geteuid())
    assert not (tmp_path / "out").exists()


def test_collecting_refuses_a_hard_link(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"KEY")
    os.link(secret, tmp_path / "executed.ipynb")
    with pytest.raises(RuntimeError, match="not a plain file"):
        collect_output(tmp_path / "executed.ipynb", tmp_path / "out", os.geteuid())
    assert not (tmp_path / "out").exists()


def test_collecting_refuses_a_file_of_another_user(tmp_path):
    (tmp_path / "executed.ipynb").write_bytes(b"{}")
    with pytest.raises(RuntimeError, match="not a plain file"):
        collect_output(tmp_path / "executed.ipynb", tmp_path / "out", os.geteuid() + 1)
    assert not (tmp_path / "out").exists()


def test_collecting_copies_the_notebook_and_returns_its_md5(tmp_path):
    (tmp_path / "executed.ipynb").write_bytes(b"{}")
    md5 = collect_output(tmp_path / "executed.ipynb", tmp_path / "out", os.geteuid())
    assert md5 == "99914b932bd37a50b983c5e7c90ae93b"
    assert (tmp_path / "out").read_bytes() == b"{}"


# -- when it cannot confine --------------------------------------------------------------
def test_not_root_the_backend_warns_that_jobs_can_read_the_data_directory(tmp_path):
    confinement = plan(data_dir=tmp_path / "d", reachable=[], runs_root=tmp_path / "r", euid=1000)
    assert not confinement.isolated
    assert confinement.warning is not None
    assert "can read the data directory" in confinement.warning
    assert "token signing key" in confinement.warning


@as_root
def test_as_root_without_the_tools_to_confine_the_backend_refuses_to_start(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(IsolationError, match="unshare, mount, setpriv"):
        LocalBackend(tmp_path / "data", token=TOKEN).running_in_thread().__enter__()


@as_root
def test_as_root_a_job_id_range_some_user_has_is_refused(tmp_path):
    with pytest.raises(IsolationError, match=r"must belong to no one, but user nobody \(65534\)"):
        plan(
            data_dir=tmp_path / "d",
            reachable=[],
            runs_root=tmp_path / "r",
            ids=range(65_000, 66_000),
        )


@as_root
def test_as_root_a_job_id_range_of_subordinate_ids_is_refused(tmp_path, monkeypatch):
    subuid = tmp_path / "subuid"
    subuid.write_text("someone:100000:65536\n")
    real_read = Path.read_text
    monkeypatch.setattr(
        Path,
        "read_text",
        lambda self, *a, **k: real_read(subuid if str(self) == "/etc/subuid" else self, *a, **k),
    )
    with pytest.raises(IsolationError, match="/etc/subuid entry someone:100000:65536"):
        plan(
            data_dir=tmp_path / "d",
            reachable=[],
            runs_root=tmp_path / "r",
            ids=range(165_000, 166_000),
        )


@as_root
def test_as_root_each_job_gets_private_temp_folders(tmp_path):
    confinement = plan(data_dir=tmp_path / "d", reachable=[], runs_root=tmp_path / "r")
    assert {"/tmp", "/var/tmp"} <= set(confinement.shared)


@as_root
def test_the_warning_is_absent_when_jobs_are_confined(tmp_path):
    confinement = plan(data_dir=tmp_path / "d", reachable=[], runs_root=tmp_path / "r")
    assert confinement.isolated
    assert confinement.warning is None
    assert json.dumps(confinement.hide) == json.dumps([str((tmp_path / "d").resolve())])
