"""The README's product command on the tutorials: JupyterLab's folder holds the stage-1
file only, and a submitted regression notebook finishes in stage 2 on the real table that
`./dev run` gave the local backend."""

from __future__ import annotations

import re

import nbformat

from tests.support import run_product


def test_dev_run_serves_the_tutorials_with_the_stage1_file_only_and_runs_stage2_on_real_data(
    tmp_path,
):
    with run_product(tmp_path, creator="tutorial") as product:
        session, base = product.session, product.base
        listing = session.get(f"{base}/api/contents/data").json()
        names = sorted(item["name"] for item in listing["content"])
        assert "insurance.csv.s1" in names
        assert not [name for name in names if name.endswith(".s2")]
        for name in ("insurance.ipynb", "regression.ipynb"):
            assert session.get(f"{base}/api/contents/{name}").ok

        submitted = session.post(
            f"{base}/manatee/jobs",
            json={"path": "regression.ipynb", "filename": "regression.ipynb"},
        ).json()
        assert submitted["code"] == 0, submitted
        job = product.wait_for_job(submitted["uuid"], 180)
        assert job["job_status"] == 5, job

        saved = session.post(f"{base}/manatee/output", json={"id": job["id"]}).json()
        executed = nbformat.read(product.notebooks / saved["filename"], as_version=4)
    printed = "".join(
        out.get("text", "") for cell in executed.cells for out in cell.get("outputs", [])
    )
    assert "Stage 2: read data/insurance.csv.s2, 1338 rows" in printed
    match = re.search(r"^R\^2: (\d\.\d+)$", printed, re.MULTILINE)
    assert match and float(match.group(1)) >= 0.75, printed
