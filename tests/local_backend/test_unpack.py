"""Hostile and malformed workspace archives are refused without writing outside the job.

End to end (submit over HTTP; the job fails in status 2 with a reason) and directly on
`unpack_workspace` (what is accepted lands exactly where it should).
"""

from __future__ import annotations

import io
import os
import tarfile
import threading
from pathlib import Path

import pytest
from lb_support import TERMINAL, Api, notebook_bytes, tar_gz, workspace_archive

from jupyterlab_manatee.local_backend.unpack import Cancelled, UnpackError, unpack_workspace

TOP = "alice-workspace"


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o644
    return info


def hostile_archives(outside: Path) -> dict[str, bytes]:
    """Archives that try to write to ``outside`` (a folder beside the data directory)."""
    nb = notebook_bytes("print(1)")
    return {
        "dotdot": tar_gz(
            [(member(f"{TOP}/nb.ipynb"), nb), (member(f"{TOP}/../../../outside/x.txt"), b"x")]
        ),
        "leading-dotdot": tar_gz([(member("../outside/x.txt"), b"x")]),
        "absolute": tar_gz([(member(str(outside / "abs.txt")), b"x")]),
        "symlink-out": tar_gz(
            [
                (member(f"{TOP}/nb.ipynb"), nb),
                (member(f"{TOP}/link", tarfile.SYMTYPE, str(outside)), None),
                (member(f"{TOP}/link/through.txt"), b"x"),
            ]
        ),
        "relative-symlink": tar_gz(
            [(member(f"{TOP}/link", tarfile.SYMTYPE, "../../../../outside"), None)]
        ),
        "hardlink": tar_gz([(member(f"{TOP}/hard", tarfile.LNKTYPE, "/etc/passwd"), None)]),
        "fifo": tar_gz([(member(f"{TOP}/pipe", tarfile.FIFOTYPE), None)]),
        "device": tar_gz([(member(f"{TOP}/dev", tarfile.CHRTYPE), None)]),
    }


def all_files(root: Path) -> set[Path]:
    """Every path under ``root``; folders the backend removes meanwhile are skipped."""
    found: set[Path] = set()
    for folder, dirs, files in os.walk(root):
        found.update(Path(folder) / name for name in (*dirs, *files))
    return found


@pytest.mark.parametrize(
    "kind",
    [
        "dotdot",
        "leading-dotdot",
        "absolute",
        "symlink-out",
        "relative-symlink",
        "hardlink",
        "fifo",
        "device",
    ],
)
def test_a_hostile_archive_is_refused_with_status_2_writing_nothing_outside_the_job(
    start_backend, tmp_path, kind
):
    outside = tmp_path / "outside"
    outside.mkdir()
    backend = start_backend()
    api = Api(backend.url)
    api.query()
    before = all_files(tmp_path)
    job_uuid = api.submit_ok(hostile_archives(outside)[kind])
    job = api.wait(job_uuid, TERMINAL)
    assert job["job_status"] == 2
    assert job["status_reason"]
    assert list(outside.iterdir()) == []
    job_dir = backend.data_dir / "jobs" / job_uuid
    new = all_files(tmp_path) - before
    storage = backend.data_dir / "storage"
    # the creator's workspace object (as upstream's bucket), and the job's own folder
    new -= {storage / "alice", storage / "alice" / "alice-workspace.tar.gz"}
    assert all(path == job_dir or job_dir in path.parents for path in new), new
    assert not (backend.runs_root / job_uuid).exists()


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"a/nb.ipynb": None, "b/x.txt": None}, "one top-level folder"),
        ({"nb.ipynb": None}, "top-level folder"),
    ],
)
def test_an_archive_without_one_top_level_folder_is_refused(api, files, fragment):
    archive = tar_gz([(member(name), notebook_bytes()) for name in files])
    job = api.wait(api.submit_ok(archive), TERMINAL)
    assert job["job_status"] == 2
    assert fragment in job["status_reason"]


def test_a_corrupt_gzip_stream_is_refused(api):
    archive = workspace_archive({"nb.ipynb": notebook_bytes()})[:-12]
    job = api.wait(api.submit_ok(archive), TERMINAL)
    assert job["job_status"] == 2
    assert "unpacked" in job["status_reason"]


def test_a_notebook_that_is_not_a_notebook_finishes_5_without_output(api):
    """As upstream: the build copies it; the executor's nbconvert fails; the VM stops."""
    job = api.wait(api.submit_ok(workspace_archive({"nb.ipynb": b"{not json"})), TERMINAL)
    assert job["job_status"] == 5
    assert "not a valid notebook" in job["status_reason"]


def test_an_archive_unpacking_past_the_size_limit_is_refused(start_backend):
    backend = start_backend(max_archive_size=10_000)  # unpacked limit: 4 x 10 000 bytes
    api = Api(backend.url)
    archive = workspace_archive({"nb.ipynb": notebook_bytes(), "zeros.bin": bytes(100_000)})
    assert len(archive) < 10_000
    job = api.wait(api.submit_ok(archive), TERMINAL)
    assert job["job_status"] == 2
    assert "larger than the limit" in job["status_reason"]


# -- directly ------------------------------------------------------------------------------
def write_archive(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_the_top_folders_contents_become_the_workspace(tmp_path):
    archive = write_archive(
        tmp_path / "a.tar.gz",
        workspace_archive({"nb.ipynb": b"{}", "sdk/__init__.py": b"", "data/d.csv": b"a\n"}),
    )
    unpack_workspace(archive, tmp_path / "ws", max_total_size=10_000)
    found = {p.relative_to(tmp_path / "ws").as_posix() for p in (tmp_path / "ws").rglob("*")}
    assert found == {"nb.ipynb", "sdk", "sdk/__init__.py", "data", "data/d.csv"}
    assert (tmp_path / "ws" / "data" / "d.csv").read_bytes() == b"a\n"


def test_names_starting_with_dot_slash_are_accepted(tmp_path):
    archive = tar_gz([(member(f"./{TOP}/nb.ipynb"), b"{}"), (member("./"), None)])
    unpack_workspace(
        write_archive(tmp_path / "a.tar.gz", archive), tmp_path / "ws", max_total_size=99
    )
    assert (tmp_path / "ws" / "nb.ipynb").read_bytes() == b"{}"


def test_the_executable_bit_is_kept_and_setuid_dropped(tmp_path):
    script = member(f"{TOP}/run.sh")
    script.mode = 0o4755
    archive = write_archive(tmp_path / "a.tar.gz", tar_gz([(script, b"#!/bin/sh\n")]))
    unpack_workspace(archive, tmp_path / "ws", max_total_size=99)
    assert (tmp_path / "ws" / "run.sh").stat().st_mode & 0o7777 == 0o755


def test_a_refused_archive_leaves_no_workspace_behind(tmp_path):
    data = hostile_archives(tmp_path / "outside")["symlink-out"]
    with pytest.raises(UnpackError, match="symbolic link"):
        unpack_workspace(
            write_archive(tmp_path / "a.tar.gz", data), tmp_path / "ws", max_total_size=10**6
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz"]


def test_a_duplicate_member_is_refused(tmp_path):
    data = tar_gz([(member(f"{TOP}/x"), b"1"), (member(f"{TOP}/x"), b"2")])
    with pytest.raises(UnpackError, match="more than once"):
        unpack_workspace(
            write_archive(tmp_path / "a.tar.gz", data), tmp_path / "ws", max_total_size=99
        )


def test_extraction_stops_when_cancelled(tmp_path):
    cancel = threading.Event()
    cancel.set()
    archive = write_archive(tmp_path / "a.tar.gz", workspace_archive({"nb.ipynb": b"{}"}))
    with pytest.raises(Cancelled):
        unpack_workspace(archive, tmp_path / "ws", max_total_size=99, cancel=cancel)
    assert not (tmp_path / "ws").exists()


def test_an_empty_archive_is_refused(tmp_path):
    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w:gz"):
        pass
    with pytest.raises(UnpackError, match="empty"):
        unpack_workspace(
            write_archive(tmp_path / "a.tar.gz", empty.getvalue()),
            tmp_path / "ws",
            max_total_size=99,
        )
