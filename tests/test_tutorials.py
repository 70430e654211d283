"""The tutorial notebooks run unchanged in both stages: in a real kernel in stage 1 on the
synthetic file, and through the local backend in stage 2 on the real table, which the
backend keeps outside JupyterLab's folder and hands to stage-2 runs."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from jupyterlab_manatee.actions.packing import bundled_dirs
from jupyterlab_manatee.config import DEFAULT_EXCLUDES
from jupyterlab_manatee.local_backend import LocalBackend
from jupyterlab_manatee.remote.api_client import ManateeApiClient
from jupyterlab_manatee.workspace.archive import write_archive
from jupyterlab_manatee.workspace.scan import scan_workspace

REPO = Path(__file__).resolve().parent.parent
TUTORIALS = REPO / "tutorials"
STAGE2_DIR = REPO / "examples-data" / "stage2"
NOTEBOOKS = ("insurance.ipynb", "regression.ipynb")
CREATOR = "tutorial-tester"
TERMINAL = {2, 5, 6, 7, 8, 9}
REAL_ROWS = 1338


def outputs(nb: Any) -> list[dict[str, Any]]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def text_of(nb: Any) -> str:
    """Everything the notebook printed or displayed as text."""
    parts = []
    for out in outputs(nb):
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        elif "text/plain" in out.get("data", {}):
            parts.append(out["data"]["text/plain"])
    return "\n".join(parts)


def errors(nb: Any) -> list[str]:
    return [
        f"{out['ename']}: {out['evalue']}" for out in outputs(nb) if out["output_type"] == "error"
    ]


def images(nb: Any) -> int:
    return sum(1 for out in outputs(nb) if "image/png" in out.get("data", {}))


def r_squared(nb: Any) -> float:
    match = re.search(r"^R\^2: (-?\d+\.\d+)$", text_of(nb), re.MULTILINE)
    assert match, text_of(nb)
    return float(match.group(1))


def code_of(name: str) -> str:
    nb = nbformat.read(TUTORIALS / name, as_version=4)
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")


# -- the notebooks as written --------------------------------------------------------------
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_notebook_reads_its_data_only_through_the_sdk(name):
    code = code_of(name)
    assert 'sdk.DataRepo("data/{name}.s1", "data/{name}.s2")' in code
    assert code.count(".s2") == 1  # the stage-2 location is named in DataRepo only
    assert not re.search(r"\bopen\(|pd\.read_csv|pandas\.read_csv", code)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_notebook_is_committed_without_outputs(name):
    nb = nbformat.read(TUTORIALS / name, as_version=4)
    assert outputs(nb) == []


# -- stage 1: a real kernel in the tutorials folder ----------------------------------------
@pytest.fixture(scope="module")
def stage1(tmp_path_factory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("stage1") / "tutorials"
    shutil.copytree(TUTORIALS, folder)
    env = {**os.environ, "EXECUTION_STAGE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    ran = {}
    for name in NOTEBOOKS:
        nb = nbformat.read(folder / name, as_version=4)
        client = NotebookClient(
            nb,
            kernel_name="python3",
            timeout=180,
            allow_errors=True,
            resources={"metadata": {"path": str(folder)}},
        )
        client.execute(env=env)
        ran[name] = nb
    return ran


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_notebook_runs_without_errors_in_stage_1(stage1, name):
    assert errors(stage1[name]) == []


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stage_1_reads_the_synthetic_file(stage1, name):
    assert re.search(r"Stage 1: read data/insurance\.csv\.s1, \d+ rows", text_of(stage1[name]))


def test_the_exploration_draws_histograms_and_a_heatmap_as_images_in_stage_1(stage1):
    assert images(stage1["insurance.ipynb"]) == 2


def test_the_regression_reports_rmse_and_r2_and_plots_in_stage_1(stage1):
    nb = stage1["regression.ipynb"]
    assert re.search(r"^RMSE: [\d,]+$", text_of(nb), re.MULTILINE)
    assert r_squared(nb) > 0  # on the synthetic split: the code runs and learns something
    assert images(nb) == 1


def test_stage_1_cannot_read_the_stage_2_file_through_the_sdk(stage1):
    assert "Refused in stage 1: refusing to read the stage-2 location" in text_of(
        stage1["insurance.ipynb"]
    )


# -- stage 2: submitted to the local backend, which holds the real table -------------------
async def submit_and_fetch(backend: LocalBackend, folder: Path, archives: Path) -> dict[str, Any]:
    """Submit each notebook as the extension does; return the executed notebooks."""
    client = ManateeApiClient(backend.url, "test-token")
    uuids = {}
    for name in NOTEBOOKS:
        manifest = scan_workspace(
            folder / name, root_dir=folder, exclude=list(DEFAULT_EXCLUDES), bundled=bundled_dirs()
        )
        archive = archives / f"{name}.tar.gz"
        with archive.open("wb") as out:
            write_archive(manifest, f"{CREATOR}-workspace", out)
        reply = await client.submit(archive, creator=CREATOR, filename=name, envs=[])
        uuids[reply["uuid"]] = name
        # One workspace object per creator (as the real API): the next submit would
        # replace this one's files until its build has read them (status past 0 and 1).
        await backend.wait_for_status(reply["uuid"], {2, 3, 4, 5, 6, 7, 8, 9}, timeout=240)
    deadline = asyncio.get_running_loop().time() + 240
    while True:
        jobs = (await client.query(creator=CREATOR, page=1, page_size=10))["jobs"]
        mine = [job for job in jobs if job["uuid"] in uuids]
        if len(mine) == len(uuids) and all(job["job_status"] in TERMINAL for job in mine):
            break
        assert asyncio.get_running_loop().time() < deadline, mine
        await asyncio.sleep(0.5)
    ran = {}
    for job in mine:
        name = uuids[job["uuid"]]
        if job["job_status"] != 5:
            log = backend.data_dir / "jobs" / job["uuid"] / "executor.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
            raise AssertionError(f"{name} did not finish: {job}\nexecutor log:\n{tail}")
        signed = await client.output(creator=CREATOR, job_id=job["id"])
        chunks: list[bytes] = []
        await client.download(signed.url, chunks.append, what="the executed notebook")
        ran[name] = nbformat.reads(b"".join(chunks).decode("utf-8"), as_version=4)
    return ran


@pytest.fixture(scope="module")
def stage2(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("stage2")
    folder = root / "tutorials"
    shutil.copytree(TUTORIALS, folder)
    # one job at a time: two kernels starting together on a loaded 2-core machine is
    # the likeliest way for this test to fail for no reason of its own
    backend = LocalBackend(
        data_dir=root / "backend",
        stage2_data_dir=STAGE2_DIR,
        max_running=1,
        job_timeout=240,
        token="test-token",
        reconcile_interval=0,
    )
    archives = root / "archives"
    archives.mkdir()
    with backend.running_in_thread():
        return asyncio.run(submit_and_fetch(backend, folder, archives))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_notebook_runs_without_errors_in_stage_2(stage2, name):
    assert errors(stage2[name]) == []


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_stage_2_reads_the_real_table(stage2, name):
    assert f"Stage 2: read data/insurance.csv.s2, {REAL_ROWS} rows" in text_of(stage2[name])


def test_the_exploration_draws_its_figures_from_the_real_table_in_stage_2(stage2):
    nb = stage2["insurance.ipynb"]
    assert images(nb) == 2
    assert f"Stage 2 reads the real table: {REAL_ROWS} rows" in text_of(nb)


def test_the_regression_reaches_r2_of_at_least_0_75_on_the_real_test_split(stage2):
    nb = stage2["regression.ipynb"]
    assert "Stage 2 results on the test split:" in text_of(nb)
    assert r_squared(nb) >= 0.75
    assert images(nb) == 1
