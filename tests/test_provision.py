"""manatee-provision without the heavy libraries: the domain file, the privacy accounting,
file placement, and the committed stage-1 file of the tutorials."""

from __future__ import annotations

import csv
import json
import math
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jupyterlab_manatee.provision import (
    DomainError,
    InputError,
    ProvisionError,
    delta_of,
    destination,
    epsilon_for,
    load_domain,
    parse_domain,
    read_table,
    rho_for,
    upload,
)

REPO = Path(__file__).resolve().parent.parent
DOMAIN_FILE = REPO / "tutorials" / "data" / "insurance.domain.json"
STAGE1 = REPO / "tutorials" / "data" / "insurance.csv.s1"
STAGE2 = REPO / "examples-data" / "stage2" / "data" / "insurance.csv.s2"


def domain(*columns: dict) -> dict:
    base = [{"name": "c", "type": "category", "categories": ["x", "y"]}]
    return {"columns": [*base, *columns]}


def real_table() -> tuple[list[str], dict[str, list[str]]]:
    return read_table(STAGE2)


# -- the domain file -----------------------------------------------------------------------
def test_the_insurance_domain_fixes_every_column_of_the_table():
    parsed = load_domain(DOMAIN_FILE)
    header, _ = real_table()
    assert parsed.names == header
    assert {c.name: c.kind for c in parsed.columns} == {
        "age": "integer",
        "sex": "category",
        "bmi": "float",
        "children": "integer",
        "smoker": "category",
        "region": "category",
        "charges": "float",
    }


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ({"name": "n", "type": "number", "edges": [0, 1]}, "must be one of"),
        ({"name": "n", "type": "integer", "edges": [0, 5, 5]}, "strictly increasing"),
        ({"name": "n", "type": "integer", "edges": [0, 2.5]}, "whole numbers"),
        ({"name": "n", "type": "float", "edges": [0, 1]}, 'needs "decimals"'),
        ({"name": "n", "type": "float", "edges": [0, 0.01], "decimals": 1}, "holds no value"),
        ({"name": "n", "type": "integer", "edges": [1]}, "at least two numbers"),
        ({"name": "n", "type": "category", "categories": ["a", "a"]}, "duplicates"),
        ({"name": "n", "type": "category", "categories": ["a"], "edges": [0, 1]}, "unknown key"),
        ({"name": "c", "type": "category", "categories": ["a"]}, "appear twice"),
        ({"name": "n", "type": "integer", "edges": [0, 1], "empty": "yes"}, "true or false"),
    ],
)
def test_a_malformed_domain_is_refused_saying_what_is_wrong(column, message):
    with pytest.raises(DomainError, match=message):
        parse_domain(domain(column))


def test_a_domain_file_that_is_not_json_is_refused(tmp_path):
    bad = tmp_path / "d.json"
    bad.write_text("{columns: }")
    with pytest.raises(DomainError, match="not valid JSON"):
        load_domain(bad)


def test_input_columns_must_match_the_domain():
    parsed = parse_domain(domain({"name": "n", "type": "integer", "edges": [0, 10]}))
    with pytest.raises(InputError, match=r"missing from the input: \['n'\].*not in the domain"):
        parsed.encode(["c", "extra"], {"c": ["x"], "extra": ["1"]})


def test_a_category_outside_the_domain_is_refused():
    parsed = parse_domain(domain({"name": "n", "type": "integer", "edges": [0, 10]}))
    with pytest.raises(InputError, match="'z'"):
        parsed.encode(["c", "n"], {"c": ["x", "z"], "n": ["1", "2"]})


def test_an_input_as_precise_as_the_output_is_refused():
    parsed = parse_domain(domain({"name": "f", "type": "float", "edges": [0, 10], "decimals": 2}))
    with pytest.raises(InputError, match='set "decimals" to at least 3'):
        parsed.encode(["c", "f"], {"c": ["x"], "f": ["1.25"]})


def test_values_outside_the_edges_are_clipped_into_the_end_bins_when_allowed():
    parsed = parse_domain(domain({"name": "n", "type": "integer", "edges": [0, 5, 10]}))
    rows = {"c": ["x"] * 4, "n": ["-3", "4", "5", "99"]}
    codes, clipped = parsed.encode(["c", "n"], rows, max_clipped_share=None)
    assert codes["n"].tolist() == [0, 0, 1, 1]
    assert clipped["n"] == 2


def test_float_values_are_drawn_inside_their_bin_with_a_non_zero_last_decimal():
    column = parse_domain(
        domain({"name": "f", "type": "float", "edges": [1.5, 2, 7], "decimals": 3})
    ).column("f")
    values = column.decode(np.array([0, 1] * 2000), np.random.default_rng(0))
    first, second = values[0::2], values[1::2]
    assert all(1.5 <= float(v) < 2 for v in first)
    assert all(2 <= float(v) < 7 for v in second)
    assert all(len(v.split(".")[1]) == 3 and v[-1] != "0" for v in values)


def test_integer_values_are_drawn_among_the_whole_numbers_of_their_bin():
    column = parse_domain(domain({"name": "n", "type": "integer", "edges": [18, 23, 65]})).column(
        "n"
    )
    values = column.decode(np.array([0] * 2000), np.random.default_rng(0))
    assert set(values) == {"18", "19", "20", "21", "22"}


# -- privacy accounting --------------------------------------------------------------------
def gaussian_delta(sigma: float, epsilon: float) -> float:
    """The exact delta(epsilon) of the Gaussian mechanism, sensitivity 1 (Balle, Wang 2018)."""

    def phi(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2))

    return phi(-epsilon * sigma + 1 / (2 * sigma)) - math.exp(epsilon) * phi(
        -epsilon * sigma - 1 / (2 * sigma)
    )


@pytest.mark.parametrize(("epsilon", "delta"), [(1.0, 1e-9), (3.0, 1e-9), (3.0, 1e-5), (10, 1e-6)])
def test_the_budget_meets_the_target_and_is_never_below_the_exact_gaussian_curve(epsilon, delta):
    rho = rho_for(epsilon, delta)
    assert delta_of(rho, epsilon) <= delta
    # A Gaussian mechanism with this rho is rho-zCDP: the conversion must cover its true delta.
    sigma = math.sqrt(1 / (2 * rho))
    assert gaussian_delta(sigma, epsilon) <= delta_of(rho, epsilon)


def test_the_budget_is_at_least_what_the_classic_conversion_allows():
    # Bun and Steinke: epsilon = rho + 2 sqrt(rho log(1/delta)), solved for rho
    log_inverse_delta = math.log(1e9)
    classic_rho = (math.sqrt(log_inverse_delta + 3.0) - math.sqrt(log_inverse_delta)) ** 2
    assert rho_for(3.0, 1e-9) >= classic_rho


def test_the_epsilon_spent_for_a_budget_is_the_epsilon_asked_for():
    rho = rho_for(3.0, 1e-9)
    assert epsilon_for(rho, 1e-9) == pytest.approx(3.0, rel=1e-6)


@pytest.mark.parametrize(("epsilon", "delta"), [(0, 1e-9), (-1, 1e-9), (1, 0), (1, 1)])
def test_an_impossible_budget_is_refused(epsilon, delta):
    with pytest.raises(ValueError):
        rho_for(epsilon, delta)


# -- files and locations -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("gs://bucket", "gs://bucket/insurance.csv"),
        ("gs://bucket/stage1/", "gs://bucket/stage1/insurance.csv"),
        ("gs://bucket/{name}.s1", "gs://bucket/insurance.csv.s1"),
        ("/srv/data/{name}.s2", "/srv/data/insurance.csv.s2"),
        ("file:///srv/data", "/srv/data/insurance.csv"),
    ],
)
def test_a_location_names_where_the_file_goes_as_the_sdk_reads_it(location, expected):
    assert destination(location, "insurance.csv") == expected


def test_an_unsupported_location_is_refused():
    with pytest.raises(ProvisionError, match="folder or gs://"):
        destination("https://example.org/x", "insurance.csv")


def test_an_upload_to_a_folder_never_replaces_a_file_unless_asked(tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("a\n1\n")
    target = upload(source, str(tmp_path / "out" / "{name}.s1"), "t.csv", overwrite=False)
    assert Path(target).read_text() == "a\n1\n"
    source.write_text("a\n2\n")
    with pytest.raises(ProvisionError, match="--overwrite"):
        upload(source, str(tmp_path / "out" / "{name}.s1"), "t.csv", overwrite=False)
    assert Path(target).read_text() == "a\n1\n"
    upload(source, str(tmp_path / "out" / "{name}.s1"), "t.csv", overwrite=True)
    assert Path(target).read_text() == "a\n2\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["t.csv.s1"]


def test_the_real_table_uploads_to_a_gcs_bucket(tmp_path, monkeypatch):
    from gcp_storage_emulator.server import create_server
    from google.cloud import storage

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        client = storage.Client(project="test")
        client.create_bucket("stage2-bucket")
        where = upload(STAGE2, "gs://stage2-bucket", "insurance.csv", overwrite=False)
        assert where == "gs://stage2-bucket/insurance.csv"
        blob = client.bucket("stage2-bucket").blob("insurance.csv")
        assert blob.download_as_bytes() == STAGE2.read_bytes()
        with pytest.raises(ProvisionError, match="exists"):
            upload(STAGE2, "gs://stage2-bucket", "insurance.csv", overwrite=False)
        with pytest.raises(ProvisionError, match="no such bucket"):
            upload(STAGE2, "gs://missing-bucket", "insurance.csv", overwrite=False)
    finally:
        server.wipe()
        server.stop()


# -- the committed stage-1 file ------------------------------------------------------------
def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_committed_stage1_file_has_the_domains_columns_and_values():
    parsed = load_domain(DOMAIN_FILE)
    rows = read_rows(STAGE1)
    assert list(rows[0]) == parsed.names
    assert 1200 < len(rows) < 1500
    for column in parsed.columns:
        values = [row[column.name] for row in rows]
        if column.kind == "category":
            assert set(values) <= set(column.categories)
        else:
            numbers = [float(v) for v in values]
            assert min(numbers) >= float(column.edges[0])
            assert max(numbers) < float(column.edges[-1])
            if column.kind == "integer":
                assert all(v.lstrip("-").isdigit() for v in values)


def test_no_number_of_the_committed_stage1_file_occurs_in_the_real_table():
    synthetic, real = read_rows(STAGE1), read_rows(STAGE2)
    for name in ("bmi", "charges"):
        real_values = {float(row[name]) for row in real}
        copied = [row[name] for row in synthetic if float(row[name]) in real_values]
        assert copied == [], f"{name}: {copied[:5]}"


def test_the_tutorials_folder_holds_no_stage2_file():
    tutorials = REPO / "tutorials"
    assert [p for p in tutorials.rglob("*.s2")] == []
    real_lines = set(STAGE2.read_text().splitlines()[1:])
    for path in tutorials.rglob("*"):
        if path.is_file() and path.suffix in ("", ".s1", ".csv", ".json", ".ipynb", ".md"):
            assert not real_lines & set(path.read_text(errors="replace").splitlines()), path


# -- the command ---------------------------------------------------------------------------
def test_the_console_command_is_declared():
    text = (REPO / "pyproject.toml").read_text()
    assert '\nmanatee-provision = "jupyterlab_manatee.provision.cli:main"\n' in text


def run_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupyterlab_manatee.provision", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_a_bad_domain_file_ends_the_command_with_a_clear_error_and_no_output(tmp_path):
    bad = tmp_path / "domain.json"
    bad.write_text(json.dumps(domain({"name": "n", "type": "integer", "edges": [3, 1]})))
    out = tmp_path / "out.s1"
    result = run_command(str(STAGE2), "--domain", str(bad), "--epsilon", "3", "--output", str(out))
    assert result.returncode == 1
    assert "error:" in result.stderr and "strictly increasing" in result.stderr
    assert not out.exists()


def test_a_negative_epsilon_is_a_usage_error():
    result = run_command(
        str(STAGE2), "--domain", str(DOMAIN_FILE), "--epsilon", "-1", "--output", "x"
    )
    assert result.returncode == 2
    assert "positive" in result.stderr


def test_an_existing_output_is_kept_and_refused_before_any_work(tmp_path):
    out = tmp_path / "out.s1"
    out.write_text("keep me\n")
    result = run_command(
        str(STAGE2), "--domain", str(DOMAIN_FILE), "--epsilon", "3", "--output", str(out)
    )
    assert result.returncode == 1
    assert "exists; pass --overwrite" in result.stderr
    assert out.read_text() == "keep me\n"


def test_the_committed_stage1_file_trains_a_regressor_scoring_r2_at_least_0_7_on_real_data():
    """Issue 18's acceptance: the tutorial's stage-1 file keeps R^2 >= 0.7 (it scores 0.719)."""
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("sklearn")
    xgboost = pytest.importorskip("xgboost")
    from sklearn.metrics import r2_score
    from sklearn.model_selection import train_test_split

    def features(table):
        smoker = (table["smoker"] == "yes").astype(int)
        return pandas.DataFrame({"age": table["age"], "bmi": table["bmi"], "smoker": smoker})

    synthetic = pandas.read_csv(STAGE1)
    _, test = train_test_split(pandas.read_csv(STAGE2), test_size=0.2, random_state=42)
    model = xgboost.XGBRegressor().fit(features(synthetic), synthetic["charges"])
    assert r2_score(test["charges"], model.predict(features(test))) >= 0.7
