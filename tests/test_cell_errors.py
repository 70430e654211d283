"""A notebook whose cells raise still ends Finished (the executor runs with
``--allow-errors``): the saved output, its reply and the job list say which cells raised."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from jupyterlab_manatee.jobs.notebook_errors import cell_errors
from tests.conftest import call, wait_for_job, write_notebook

FINISHED = 5


def notebook_with_outputs(path: Path, outputs_per_cell: list[list[dict]]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("# title"))
    for outputs in outputs_per_cell:
        cell = nbformat.v4.new_code_cell("x")
        cell.outputs = [nbformat.from_dict(o) for o in outputs]
        nb.cells.append(cell)
    path.write_text(nbformat.writes(nb))
    return path


def error(ename: str, evalue: str) -> dict:
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": []}


def test_cells_that_raised_are_counted_and_the_first_is_named(tmp_path):
    stream = {"output_type": "stream", "name": "stdout", "text": "ok\n"}
    path = notebook_with_outputs(
        tmp_path / "out.ipynb",
        [[stream], [error("KeyError", "'bmi'")], [], [stream, error("ValueError", "bad")]],
    )
    assert cell_errors(path) == {
        "count": 2,
        "first": {"cell": 2, "ename": "KeyError", "evalue": "'bmi'"},
    }


def test_a_clean_notebook_has_no_errors(tmp_path):
    path = notebook_with_outputs(tmp_path / "out.ipynb", [[], []])
    assert cell_errors(path) == {"count": 0, "first": None}


def test_a_file_that_is_not_a_notebook_is_unknown(tmp_path):
    (tmp_path / "out.ipynb").write_text(json.dumps([1, 2]))
    assert cell_errors(tmp_path / "out.ipynb") is None


async def test_a_run_whose_cell_raises_finishes_and_its_output_says_so(
    jp_fetch, backend, jp_root_dir
):
    write_notebook(jp_root_dir / "fails" / "nb.ipynb", "print('start')")
    nb_path = jp_root_dir / "fails" / "nb.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("1 / 0"))
    nb.cells.append(nbformat.v4.new_code_cell("print('after')"))
    nbformat.write(nb, nb_path)

    code, submitted = await call(jp_fetch, "jobs", method="POST", body={"path": "fails/nb.ipynb"})
    assert code == 200, submitted
    job = await wait_for_job(jp_fetch, submitted["uuid"], {FINISHED, 2, 6, 7, 8, 9})
    assert job["job_status"] == FINISHED  # as the real executor does with --allow-errors

    code, saved = await call(jp_fetch, "output", method="POST", body={"id": job["id"]})
    assert code == 200, saved
    assert saved["errors"] == {
        "count": 1,
        "first": {"cell": 2, "ename": "ZeroDivisionError", "evalue": "division by zero"},
    }
    assert saved["errors_message"] == (
        "1 cell raised an error in the stage-2 run; the first: ZeroDivisionError in code cell 2"
    )

    _, listing = await call(jp_fetch, "jobs")
    listed = next(j for j in listing["jobs"] if j["id"] == job["id"])
    assert listed["output"]["path"] == saved["path"]
    assert listed["output"]["errors"]["count"] == 1
    assert listed["cells_raised"] == {
        "count": 1,
        "first": "ZeroDivisionError: division by zero",
        "first_cell": 2,
    }


def test_an_output_over_the_scan_limit_is_reported_unchecked_not_clean(tmp_path, monkeypatch):
    from jupyterlab_manatee.jobs import notebook_errors

    path = tmp_path / "out.ipynb"
    path.write_bytes(b" " * (2 * 1024 * 1024 + 1))  # parsing it would fail: it is not read
    monkeypatch.setattr(notebook_errors, "MAX_NOTEBOOK_BYTES", 2 * 1024 * 1024)

    errors = notebook_errors.cell_errors(path)

    assert errors == {
        "count": None,
        "first": None,
        "unchecked": "the output is 2 MiB, over the 2 MiB this server scans: open it to see "
        "whether cells raised",
    }
    assert notebook_errors.describe(errors) == (
        "cells were not checked for errors: the output is 2 MiB, over the 2 MiB this server "
        "scans: open it to see whether cells raised"
    )
