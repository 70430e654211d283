"""A second table no one here wrote: scikit-learn's diabetes data (442 patients) with a
domain written from public clinical cut-offs (examples-data/diabetes/), provisioned by the
real command as a data owner would, with a held-out split for the utility score."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mbi", reason="the provision extra (mbi) is not installed")
sklearn_datasets = pytest.importorskip("sklearn.datasets")

REPO = Path(__file__).resolve().parent.parent
DOMAIN = REPO / "examples-data" / "diabetes" / "diabetes.domain.json"


@pytest.fixture(scope="module")
def owner_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The owner's files (pandas writes whole numbers as ``59.0``) and one run at epsilon 3."""
    folder = tmp_path_factory.mktemp("diabetes")
    frame = sklearn_datasets.load_diabetes(scaled=False, as_frame=True).frame
    train = frame.sample(frac=0.75, random_state=0)
    train.to_csv(folder / "train.csv", index=False)
    frame.drop(train.index).to_csv(folder / "test.csv", index=False)
    output, report = folder / "diabetes.csv.s1", folder / "report.json"
    result = subprocess.run(
        [
            sys.executable, "-m", "jupyterlab_manatee.provision", str(folder / "train.csv"),
            "--domain", str(DOMAIN), "--epsilon", "3", "--seed", "7", "--iters", "50",
            "--output", str(output), "--report", str(report),
            "--holdout", str(folder / "test.csv"), "--target", "target",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return {"folder": folder, "result": result, "output": output, "report": report}


def test_the_owners_table_holds_whole_numbers_written_with_a_decimal_point(owner_run):
    first = (owner_run["folder"] / "train.csv").read_text().splitlines()[1]
    assert first.split(",")[0].endswith(".0")  # age, an integer column in the domain


def test_the_second_table_is_provisioned_with_its_public_domain(owner_run):
    result = owner_run["result"]
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("plan: 332 input rows (not private), 11 columns, epsilon 3")
    assert "  suggestion: epsilon 4.4 or more" in result.stdout
    with owner_run["output"].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "target",
    ]  # fmt: skip
    assert 250 < len(rows) < 420


def test_the_console_states_the_privacy_guarantee_in_plain_words(owner_run):
    stdout = owner_run["result"].stdout
    assert (
        "differential privacy with epsilon 3 and delta 1e-09. Whether any one person's record "
        "is in the table or not changes the chance of any output by at most a factor of 20.1"
    ) in stdout


def test_the_report_scores_a_model_trained_on_the_output_on_the_owners_holdout(owner_run):
    utility = json.loads(owner_run["report"].read_text())["not_private"]["utility"]
    assert (utility["target"], utility["metric"], utility["holdout_rows"]) == ("target", "R^2", 110)
    # linear least squares on the real 332 rows: a deterministic number
    assert utility["trained_on_input"] == pytest.approx(0.590, abs=0.005)
    assert -1.0 < utility["trained_on_output"] < utility["trained_on_input"]
    assert "when trained on the output" in owner_run["result"].stdout


def test_no_synthetic_patient_lands_in_the_diabetic_glucose_bin_no_real_one_is_in(owner_run):
    with owner_run["output"].open(newline="") as handle:
        glucose = [int(row["s6"]) for row in csv.DictReader(handle)]
    real = [float(line.split(",")[9]) for line in
            (owner_run["folder"] / "train.csv").read_text().splitlines()[1:]]  # fmt: skip
    assert max(real) < 126
    assert sum(g >= 126 for g in glucose) == 0
