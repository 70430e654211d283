"""The snippet from existing ManaTEE notebooks runs unchanged, in a real kernel, against
the GCS emulator: in stage 1 (JupyterLab) and in stage 2 (as in the TEE)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from sdk_support import INSURANCE_CSV, POOL, PROJECT_ID, REAL_CSV, SERVICE_ACCOUNT

import sdk

SDK_DIR = Path(sdk.__file__).parent
SNIPPET = f"""import sdk, io, pandas
sdk.gcp.init("{PROJECT_ID}", "{POOL}", "{SERVICE_ACCOUNT}")
repo = sdk.DataRepo("gs://stage1-data", "gs://stage2-data")
data = pandas.read_csv(io.StringIO(repo.get_data("insurance.csv")))"""
REPORT = """import json
print(json.dumps({"stage": repo.stage, "rows": len(data),
                  "charges": round(float(data["charges"].sum()), 4), "sdk": sdk.__file__}))"""


@pytest.fixture
def buckets(gcs):
    gcs.put("stage1-data", "insurance.csv", INSURANCE_CSV)
    gcs.put("stage2-data", "insurance.csv", REAL_CSV)
    return gcs


def run_notebook(folder: Path) -> dict:
    """Execute the snippet notebook in ``folder`` and return what its report cell printed."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(SNIPPET), nbformat.v4.new_code_cell(REPORT)]
    NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=60,
        resources={"metadata": {"path": str(folder)}},
    ).execute()
    [output] = [o for o in notebook.cells[1].outputs if o.get("name") == "stdout"]
    return json.loads(output["text"])


def test_the_snippet_reads_the_stage1_bucket_in_a_jupyterlab_kernel(
    buckets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sdk.STAGE_ENV, '"1"')
    monkeypatch.setenv("PYTHONPATH", str(SDK_DIR.parent))
    report = run_notebook(tmp_path)
    assert report["stage"] == 1
    assert report["rows"] == 3
    assert report["charges"] == round(16884.924 + 1725.5523 + 4449.462, 4)
    assert Path(report["sdk"]).parent == SDK_DIR


def test_the_snippet_reads_the_stage2_bucket_in_a_tee_like_kernel(
    buckets, google, stage2_env, tmp_path: Path
) -> None:
    # As in the TEE: the sdk/ folder travels beside the notebook, nothing is installed.
    shutil.copytree(SDK_DIR, tmp_path / "sdk", ignore=shutil.ignore_patterns("__pycache__"))
    report = run_notebook(tmp_path)
    assert report["stage"] == 2
    assert report["rows"] == 2
    assert report["charges"] == round(21984.47061 + 3866.8552, 4)
    assert Path(report["sdk"]).parent == tmp_path / "sdk"
    assert len(google.sts_calls()) == 1
    assert len(google.iam_calls()) == 1
