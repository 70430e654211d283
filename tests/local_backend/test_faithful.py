"""What the real API does that a friendlier stand-in would hide (manatee-api.md, section 5):
one workspace object per creator, read when the build starts; and a gzip bomb's cap.

Builds are held (`LocalBackend.hold_builds`) while a test sets up what the reconciler will
find, then released: no test races the reconciler's clock."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
from pathlib import Path

import nbformat
import pytest
import requests
from google.auth import jwt
from lb_support import CREATOR, TERMINAL, Api, notebook_bytes, workspace_archive

from jupyterlab_manatee.local_backend.runner import RunnerConfig
from jupyterlab_manatee.local_backend.unpack import UnpackError, unpack_workspace

WORKSPACE = Path("storage") / CREATOR / f"{CREATOR}-workspace.tar.gz"
ARCHIVE_A = workspace_archive({"nb.ipynb": notebook_bytes("print('built from A')")})
ARCHIVE_B = workspace_archive({"nb.ipynb": notebook_bytes("print('built from B')")})


def printed(api: Api, job: dict) -> str:
    """What the executed notebook printed."""
    content = requests.get(api.download(job["id"])["signed_url"], timeout=30).content
    nb = nbformat.reads(content.decode("utf-8"), as_version=4)
    return "".join(out.get("text", "") for cell in nb.cells for out in cell.get("outputs", []))


@pytest.fixture
def local_backend(start_backend):
    """One job at a time: these tests are about which files a build reads, not about
    concurrency. Two concurrent jobs here ended 9 (launch failed) in 2 of 4 full runs on
    2026-12-06; that race is open (see the session note), not hidden from other tests."""
    return start_backend()


@pytest.fixture
def held(local_backend):
    """The backend with every build held; released at the end whatever happens."""
    local_backend.hold_builds()
    yield local_backend
    local_backend.release_builds()


def test_a_submit_writes_the_creators_one_workspace_object(held, api):
    api.submit_ok(ARCHIVE_A)
    assert (held.data_dir / WORKSPACE).read_bytes() == ARCHIVE_A


def test_a_second_submit_replaces_the_workspace_object_of_the_first(held, api):
    first = api.submit_ok(ARCHIVE_A)
    api.submit_ok(ARCHIVE_B)
    assert (held.data_dir / WORKSPACE).read_bytes() == ARCHIVE_B
    assert api.job(first)["job_status"] == 0  # its build has not read anything yet


def test_a_held_build_leaves_the_job_in_status_0(held, api):
    job_uuid = api.submit_ok(ARCHIVE_A)
    api.submit_ok(ARCHIVE_A)  # a second request: the first one's enqueue has been seen
    assert api.job(job_uuid)["job_status"] == 0


def test_two_quick_submissions_make_the_first_job_build_the_seconds_files(held, api):
    first = api.submit_ok(ARCHIVE_A)
    second = api.submit_ok(ARCHIVE_B)
    held.release_builds()
    jobs = [api.wait(job_uuid, TERMINAL, timeout=90) for job_uuid in (first, second)]
    assert [job["job_status"] for job in jobs] == [5, 5], jobs  # the reasons, if one failed
    assert printed(api, jobs[0]) == "built from B\n"
    assert printed(api, jobs[1]) == "built from B\n"


def test_a_submission_after_the_build_started_leaves_that_job_its_own_files(local_backend, api):
    first = api.submit_read(ARCHIVE_A)
    second = api.submit_ok(ARCHIVE_B)
    jobs = [api.wait(job_uuid, TERMINAL, timeout=90) for job_uuid in (first, second)]
    assert printed(api, jobs[0]) == "built from A\n"
    assert printed(api, jobs[1]) == "built from B\n"


def test_the_token_names_the_archive_the_build_read_not_the_one_submitted(held, api):
    first = api.submit_ok(ARCHIVE_A)
    api.submit_ok(ARCHIVE_B)
    held.release_builds()
    job = api.wait(first, TERMINAL, timeout=90)
    token = requests.get(api.attestation(job["id"])["signed_url"], timeout=10).text
    claims = jwt.decode(token, verify=False)
    digest = claims["submods"]["container"]["image_digest"]
    assert digest == "sha256:" + hashlib.sha256(ARCHIVE_B).hexdigest()


def test_another_creators_submit_leaves_my_workspace_object_alone(held, api):
    api.submit_ok(ARCHIVE_A)
    Api(api.base_url, "bob").submit_ok(ARCHIVE_B)
    assert (held.data_dir / WORKSPACE).read_bytes() == ARCHIVE_A


def test_a_release_starts_the_held_builds_without_waiting_for_the_interval(start_backend):
    backend = start_backend(reconcile_interval=3600)
    api = Api(backend.url)
    backend.hold_builds()
    job_uuid = api.submit_ok(ARCHIVE_A)
    backend.release_builds()
    assert api.wait(job_uuid, TERMINAL, timeout=90)["job_status"] == 5


# -- the expansion cap (gzip bombs) ------------------------------------------------------
def bomb(size: int) -> bytes:
    """A workspace archive whose one file is ``size`` zero bytes (compresses ~1000:1)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        folder = tarfile.TarInfo(f"{CREATOR}-workspace")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        nb = tarfile.TarInfo(f"{CREATOR}-workspace/nb.ipynb")
        data = notebook_bytes("print(1)")
        nb.size = len(data)
        tar.addfile(nb, io.BytesIO(data))
        zeros = tarfile.TarInfo(f"{CREATOR}-workspace/zeros.bin")
        zeros.size = size
        tar.addfile(zeros, io.BytesIO(bytes(size)))
    return buffer.getvalue()


class DiskWatch(threading.Event):
    """A never-set cancel event that, each time extraction looks at it (once per member
    and per MiB written), measures the bytes under ``folder``: the most seen is kept."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder
        self.most = 0

    def is_set(self) -> bool:
        written = sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())
        self.most = max(self.most, written)
        return False


def test_a_gzip_bomb_is_refused_having_written_at_most_the_ratio_times_its_size(tmp_path):
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(bomb(32 * 1024 * 1024))
    size = archive.stat().st_size
    limit = RunnerConfig().unpack_limit(size)
    assert limit == 20 * 64 * 1024  # the default ratio, over the 64 KiB floor
    (tmp_path / "out").mkdir()
    watch = DiskWatch(tmp_path / "out")
    with pytest.raises(UnpackError) as refused:
        unpack_workspace(archive, tmp_path / "out" / "ws", max_total_size=limit, cancel=watch)
    assert str(refused.value) == (
        f"the unpacked workspace is larger than the limit of {limit} bytes "
        "(a multiple of the archive's size: see --max-expansion-ratio)"
    )
    assert watch.most <= limit
    assert list((tmp_path / "out").iterdir()) == []


def test_a_gzip_bomb_fails_its_build_with_status_2(start_backend):
    backend = start_backend(max_expansion_ratio=10)
    api = Api(backend.url)
    archive = bomb(32 * 1024 * 1024)
    job = api.wait(api.submit_ok(archive), TERMINAL, timeout=60)
    assert (job["job_status"], job["status_reason"]) == (
        2,
        "the unpacked workspace is larger than the limit of 655360 bytes "
        "(a multiple of the archive's size: see --max-expansion-ratio)",
    )
    assert len(archive) < 64 * 1024  # so the limit is 10 x the 64 KiB floor


def test_an_ordinary_workspace_unpacks_within_the_default_ratio(api):
    text = json.dumps({"rows": list(range(20_000))}).encode()  # compresses ~4:1
    archive = workspace_archive({"nb.ipynb": notebook_bytes("print('ok')"), "data.json": text})
    job = api.wait(api.submit_ok(archive), TERMINAL, timeout=90)
    assert job["job_status"] == 5
