"""The backend's stage-2 data folder: its files appear in each stage-2 run's workspace at
the paths the notebook names, never over a submitted file, and leave with the workspace."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests
from lb_support import TOKEN, Api, notebook_bytes, workspace_archive

from jupyterlab_manatee.local_backend import LocalBackend
from jupyterlab_manatee.local_backend.runner import place_stage2_data
from jupyterlab_manatee.local_backend.unpack import Cancelled

READS_AND_CHANGES = notebook_bytes(
    "from pathlib import Path\n"
    "for name in ('data/real.csv.s2', 'data/taken.csv.s2', 'nested/deeper/notes.txt'):\n"
    "    print(name, '=', Path(name).read_text().strip())",
    "import os\n"
    "os.chmod('data/real.csv.s2', 0o644)\n"
    "Path('data/real.csv.s2').write_text('changed by the job')\n"
    "print('wrote', Path('data/real.csv.s2').read_text())",
)


def owner_folder(root: Path) -> Path:
    """A stage-2 data folder as a data owner lays it out."""
    folder = root / "stage2"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "real.csv.s2").write_text("real rows\n")
    (folder / "data" / "taken.csv.s2").write_text("the backend's copy\n")
    (folder / "nested" / "deeper").mkdir(parents=True)
    (folder / "nested" / "deeper" / "notes.txt").write_text("deep file\n")
    return folder


# -- the placing function ----------------------------------------------------------------
def test_files_are_copied_at_their_relative_paths(tmp_path):
    source, workspace = owner_folder(tmp_path), tmp_path / "ws"
    workspace.mkdir()
    placed, skipped = place_stage2_data(source, workspace)
    assert placed == ["data/real.csv.s2", "data/taken.csv.s2", "nested/deeper/notes.txt"]
    assert skipped == []
    assert (workspace / "data" / "real.csv.s2").read_text() == "real rows\n"
    assert not (workspace / "data" / "real.csv.s2").samefile(source / "data" / "real.csv.s2")


def test_a_submitted_file_is_never_overwritten(tmp_path):
    source, workspace = owner_folder(tmp_path), tmp_path / "ws"
    (workspace / "data").mkdir(parents=True)
    (workspace / "data" / "taken.csv.s2").write_text("submitted\n")
    placed, skipped = place_stage2_data(source, workspace)
    assert skipped == ["data/taken.csv.s2"]
    assert "data/real.csv.s2" in placed
    assert (workspace / "data" / "taken.csv.s2").read_text() == "submitted\n"


def test_a_submitted_file_where_a_folder_is_needed_is_left_alone(tmp_path):
    source, workspace = owner_folder(tmp_path), tmp_path / "ws"
    workspace.mkdir()
    (workspace / "nested").write_text("a file, not a folder\n")
    _, skipped = place_stage2_data(source, workspace)
    assert skipped == ["nested/deeper/notes.txt"]
    assert (workspace / "nested").read_text() == "a file, not a folder\n"


def test_a_missing_stage2_folder_places_nothing(tmp_path):
    assert place_stage2_data(tmp_path / "absent", tmp_path) == ([], [])


def test_a_cancelled_placement_stops_and_leaves_no_partial_file(tmp_path):
    source, workspace = owner_folder(tmp_path), tmp_path / "ws"
    workspace.mkdir()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        place_stage2_data(source, workspace, cancel)
    assert [p for p in workspace.rglob("*") if p.is_file()] == []


# -- through a real backend and kernel ---------------------------------------------------
class Ran:
    backend: LocalBackend
    source: Path
    job: dict[str, Any]
    outputs: list[str]


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> Iterator[Ran]:
    root = tmp_path_factory.mktemp("stage2data")
    result = Ran()
    result.source = owner_folder(root)
    result.backend = LocalBackend(
        root / "backend", stage2_data_dir=result.source, token=TOKEN, reconcile_interval=0
    )
    with result.backend.running_in_thread():
        api = Api(result.backend.url)
        archive = workspace_archive(
            {"nb.ipynb": READS_AND_CHANGES, "data/taken.csv.s2": b"submitted by the user\n"}
        )
        job_uuid = api.submit_ok(archive)
        result.job = api.wait(job_uuid, {2, 5, 6, 7, 8, 9}, timeout=90)
        reply = api.download(result.job["id"])
        content = requests.get(reply["signed_url"], timeout=30).content
        nb = nbformat.reads(content.decode("utf-8"), as_version=4)
        result.outputs = [json.dumps(cell.get("outputs", [])) for cell in nb.cells]
        yield result


def test_a_stage2_run_reads_the_owners_files_where_the_notebook_names_them(ran):
    assert ran.job["job_status"] == 5, ran.job
    assert "data/real.csv.s2 = real rows" in ran.outputs[0]
    assert "nested/deeper/notes.txt = deep file" in ran.outputs[0]


def test_a_stage2_run_keeps_the_file_it_was_submitted_with(ran):
    assert "data/taken.csv.s2 = submitted by the user" in ran.outputs[0]


def test_a_job_changing_its_copy_leaves_the_owners_file_intact(ran):
    assert "wrote changed by the job" in ran.outputs[1]
    assert (ran.source / "data" / "real.csv.s2").read_text() == "real rows\n"


def test_the_copies_leave_with_the_workspace(ran):
    job_dir = ran.backend.data_dir / "jobs" / ran.job["uuid"]
    assert [p.name for p in job_dir.iterdir()] == ["executor.log"]
    assert not (ran.backend.runs_root / ran.job["uuid"]).exists()
