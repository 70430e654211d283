"""``--engine spark``: Spark runs the same statements as DuckDB, so it counts the same
marginals and census, and the command writes the same file for the same seed."""

from __future__ import annotations

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
