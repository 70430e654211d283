"""MST on the insurance table (needs the ``provision`` extra): the output fits the domain,
copies no real number, is reproducible, is useful, and the command writes and uploads it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mbi", reason="the provision extra (mbi) is not installed")

from jupyterlab_manatee.provision import load_domain, read_table, synthesize
from jupyterlab_manatee.provision.mst import Synthesis

REPO = Path(__file__).resolve().parent.parent
DOMAIN_FILE = REPO / "tutorials" / "data" / "insurance.domain.json"
STAGE2 = REPO / "examples-data" / "stage2" / "data" / "insurance.csv.s2"
#: The seed the committed tutorials/data/insurance.csv.s1 was made with.
SEED = 20260101


@pytest.fixture(scope="module")
def runs() -> tuple[Synthesis, Synthesis]:
    """Two runs with the same seed (the second reuses the first's compiled programs)."""
    domain = load_domain(DOMAIN_FILE)
    header, rows = read_table(STAGE2)
    return tuple(  # type: ignore[return-value]
        synthesize(rows, header, domain, epsilon=3.0, delta=1e-9, seed=SEED) for _ in range(2)
    )


def test_the_output_has_the_domains_columns_and_types(runs):
    first, _ = runs
    frame = first.frame()
    assert list(frame.columns) == ["age", "sex", "bmi", "children", "smoker", "region", "charges"]
    numeric = ["age", "bmi", "children", "charges"]
    assert [str(frame.dtypes[n]) for n in numeric] == ["int64", "float64", "int64", "float64"]
    assert set(frame["region"]) == {"northeast", "northwest", "southeast", "southwest"}
    assert frame["age"].between(18, 64).all() and frame["children"].between(0, 5).all()
    assert set(frame["smoker"]) <= {"no", "yes"} and set(frame["sex"]) <= {"female", "male"}
    assert frame["bmi"].between(15, 55, inclusive="left").all()
    assert 1200 < len(frame) < 1500


def test_no_numeric_value_of_the_output_occurs_in_the_real_table(runs):
    first, _ = runs
    _, real = read_table(STAGE2)
    for name in ("bmi", "charges"):
        real_values = {float(v) for v in real[name]}
        assert not {float(v) for v in first.columns[name]} & real_values, name


def test_the_same_seed_gives_the_same_output(runs):
    first, second = runs
    assert first.columns == second.columns
    assert first.report["selected_marginals"] == second.report["selected_marginals"]


def test_a_regressor_trained_on_the_output_scores_well_on_the_real_test_split(runs):
    """Upstream's stage-1 file scores R^2 -0.42 here (see shared/data/NOTICE.md)."""
    import pandas
    from sklearn.metrics import r2_score
    from sklearn.model_selection import train_test_split
    from xgboost import XGBRegressor

    def features(table: pandas.DataFrame) -> pandas.DataFrame:
        smoker = (table["smoker"] == "yes").astype(int)
        return pandas.DataFrame({"age": table["age"], "bmi": table["bmi"], "smoker": smoker})

    synthetic = runs[0].frame()
    _, test = train_test_split(pandas.read_csv(STAGE2), test_size=0.2, random_state=42)
    model = XGBRegressor().fit(features(synthetic), synthetic["charges"])
    assert r2_score(test["charges"], model.predict(features(test))) >= 0.3


def test_the_report_states_the_budget_spent_and_the_distances_to_the_real_table(runs):
    report = runs[0].report
    privacy = report["privacy"]
    assert privacy["epsilon_spent"] == pytest.approx(3.0, rel=1e-6)
    assert privacy["delta"] == 1e-9
    parts = privacy["one_way"]["rho"] + privacy["selection"]["rho"] + privacy["two_way"]["rho"]
    assert parts == pytest.approx(privacy["rho"])
    assert len(report["selected_marginals"]) == 6  # a spanning tree over 7 columns
    distances = report["not_private"]["distances"]
    assert set(distances["one_way"]["columns"]) == set(runs[0].domain.names)
    assert len(distances["two_way"]["pairs"]) == 21
    assert 0 < distances["one_way"]["mean"] < 0.05
    assert 0 < distances["two_way"]["mean"] < 0.15


def test_the_command_writes_the_output_and_report_and_places_both_files(tmp_path):
    output, report = tmp_path / "out" / "insurance.csv.s1", tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyterlab_manatee.provision",
            str(STAGE2),
            "--domain",
            str(DOMAIN_FILE),
            "--epsilon",
            "3",
            "--iters",
            "100",
            "--output",
            str(output),
            "--report",
            str(report),
            "--upload-s1",
            str(tmp_path / "stage1"),
            "--upload-s2",
            str(tmp_path / "stage2" / "data" / "{name}.s2"),
            "--name",
            "insurance.csv",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    assert "privacy spent: epsilon 3, delta 1e-09" in result.stdout
    assert "not private" in result.stdout
    assert output.read_text().startswith("age,sex,bmi,children,smoker,region,charges\n")
    assert (tmp_path / "stage1" / "insurance.csv").read_bytes() == output.read_bytes()
    placed = tmp_path / "stage2" / "data" / "insurance.csv.s2"
    assert placed.read_bytes() == STAGE2.read_bytes()
    saved = json.loads(report.read_text())
    assert saved["seed"] == "random, not recorded"
    assert saved["privacy"]["epsilon"] == 3.0
