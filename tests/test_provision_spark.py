"""``--engine spark``: Spark runs the same statements as DuckDB, so it counts the same
marginals and census, and the command writes the same file for the same seed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jupyterlab_manatee.provision import load_domain
from jupyterlab_manatee.provision.engines import Source, open_engine
from jupyterlab_manatee.provision.engines.sql import one_and_two_way
from tests.benchmarks.tables import insurance_like
from tests.test_provision_engine import (
    DOMAIN_WITH_EMPTIES,
    EXPECTED_WITH_EMPTIES,
    empties_csv,
    empties_parquet,
)

UNDER_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")
if not UNDER_CI:  # on a developer's machine without them, skip; under CI, fail
    pytest.importorskip("pyspark", reason="pyspark (the spark extra) is not installed")
    if shutil.which("java") is None:
        pytest.skip(
            "Spark needs Java (apt-get install default-jre-headless)", allow_module_level=True
        )

REPO = Path(__file__).resolve().parent.parent
INSURANCE_DOMAIN = REPO / "tutorials" / "data" / "insurance.domain.json"
STAGE2 = REPO / "examples-data" / "stage2" / "data" / "insurance.csv.s2"


@pytest.fixture(scope="module")
def spark():
    with open_engine("spark", master="local[2]") as engine:
        yield engine


@pytest.fixture(scope="module")
def duckdb():
    with open_engine("duckdb") as engine:
        yield engine


def counts(engine, source: Source) -> dict:
    domain = load_domain(INSURANCE_DOMAIN)
    table = engine.open(source)
    marginals = table.marginals(domain, one_and_two_way(domain.names))
    return {
        "census": table.census(domain),
        "marginals": {clique: array.tolist() for clique, array in marginals.items()},
    }


def test_spark_and_duckdb_count_the_same_census_and_marginals_of_a_csv(spark, duckdb):
    source = Source(str(STAGE2))
    assert counts(spark, source) == counts(duckdb, source)


def test_spark_and_duckdb_count_the_same_of_a_parquet_table(spark, duckdb, tmp_path):
    source = Source(str(insurance_like(tmp_path / "t.parquet", 30_000)))
    assert counts(spark, source) == counts(duckdb, source)


@pytest.mark.parametrize("write", [empties_csv, empties_parquet], ids=["csv", "parquet"])
def test_spark_and_duckdb_count_empty_cells_and_clipped_values_alike(
    spark, duckdb, tmp_path, write
):
    source = Source(str(write(tmp_path)))
    found = []
    for engine in (spark, duckdb):
        table = engine.open(source)
        marginals = table.marginals(DOMAIN_WITH_EMPTIES, one_and_two_way(DOMAIN_WITH_EMPTIES.names))
        found.append(
            (
                table.census(DOMAIN_WITH_EMPTIES),
                {clique: array.tolist() for clique, array in marginals.items()},
            )
        )
    assert found[0] == found[1]
    assert found[0][1] == EXPECTED_WITH_EMPTIES


def test_spark_lists_the_same_bad_values_as_duckdb(spark, duckdb, tmp_path):
    table = tmp_path / "bad.csv"
    rows = STAGE2.read_text().splitlines()
    rows[1] = rows[1].replace("female", "unknown-sex").replace("27.9", "27.90001")
    rows[2] = rows[2].replace("18,", "eighteen,")
    table.write_text("\n".join(rows) + "\n")
    domain = load_domain(INSURANCE_DOMAIN)
    found = []
    for engine in (spark, duckdb):
        opened = engine.open(Source(str(table)))
        found.append(
            [
                opened.census(domain).columns["bmi"].places,
                opened.examples(domain, "sex", "unknown"),
                opened.examples(domain, "age", "not_numbers"),
            ]
        )
    assert found[0] == found[1] == [5, (["unknown-sex"], 1), (["eighteen"], 1)]


def test_spark_and_duckdb_write_the_same_file_for_the_same_seed(tmp_path):
    outputs = []
    for engine in ("spark", "duckdb"):
        output = tmp_path / engine / "out.csv"
        result = subprocess.run(
            [
                sys.executable, "-m", "jupyterlab_manatee.provision", str(STAGE2),
                "--domain", str(INSURANCE_DOMAIN), "--epsilon", "3", "--seed", "4",
                "--iters", "20", "--engine", engine, "--spark-master", "local[2]",
                "--output", str(output),
            ],
            capture_output=True, text=True, cwd=REPO, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(output.read_bytes())
    assert outputs[0] == outputs[1]


def run_command(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupyterlab_manatee.provision", *args],
        capture_output=True, text=True, cwd=REPO, timeout=300, env=env,
    )  # fmt: skip


def small_categories(folder: Path) -> tuple[Path, Path]:
    """A 240-row table of three category columns and its domain: AIM's rounds stay short."""
    folder.mkdir(parents=True, exist_ok=True)
    data, domain = folder / "real.csv", folder / "domain.json"
    data.write_text(
        "a,b,c\n"
        + "".join(f"{'xyz'[i % 3]},{'pq'[i % 7 < 3]},{'uvw'[i % 5 % 3]}\n" for i in range(240))
    )
    columns = [
        {"name": "a", "type": "category", "categories": ["x", "y", "z"]},
        {"name": "b", "type": "category", "categories": ["p", "q"]},
        {"name": "c", "type": "category", "categories": ["u", "v", "w"]},
    ]
    domain.write_text(json.dumps({"columns": columns}))
    return data, domain


def test_aim_on_spark_writes_the_same_file_as_on_duckdb_for_the_same_seed(tmp_path):
    data, domain = small_categories(tmp_path)
    outputs = []
    for engine in ("spark", "duckdb"):
        output = tmp_path / engine / "out.csv"
        result = run_command(
            str(data), "--domain", str(domain), "--epsilon", "4", "--seed", "7",
            "--method", "aim", "--iters", "30", "--aim-round-iters", "10",
            "--engine", engine, "--spark-master", "local[2]", "--output", str(output),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(output.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0].splitlines()[0] == b"a,b,c"
    assert len(outputs[0].splitlines()) == 1 + 253  # the noisy count of 240 rows, seed 7


def test_domain_drafting_on_spark_writes_the_same_file_as_on_duckdb(tmp_path):
    """The quantiles' noise is OpenDP's, which takes no seed: at an epsilon this large the
    noisy max picks the exact quantile, so both engines' counts give one file."""
    data = tmp_path / "real.csv"
    # x: 0 to 99, three rows each, so its quartiles are 25, 50 and 75 with no tie
    data.write_text("x,s\n" + "".join(f"{i * 37 % 100},{'ab'[i % 2]}\n" for i in range(300)))
    drafted = []
    for engine in ("spark", "duckdb"):
        output = tmp_path / engine / "domain.json"
        output.parent.mkdir()
        result = run_command(
            "domain", "--output", str(output), "--data", str(data), "--epsilon", "10000",
            "--integer", "x=0..100", "--category", "s=a,b", "--bins", "4",
            "--engine", engine, "--spark-master", "local[2]",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        drafted.append(output.read_bytes())
    assert drafted[0] == drafted[1]
    assert json.loads(drafted[0])["columns"][0]["edges"] == [0, 25, 50, 75, 100]
