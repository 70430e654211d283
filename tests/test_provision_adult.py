"""A third table no one here wrote: the UCI Adult (census income) table, with a domain
written from its published description (examples-data/adult/). The first 40 rows of the
published ``adult.data`` (Kohavi and Becker 1996, UCI Machine Learning Repository,
CC BY 4.0) are kept there as published: no header, ``", "`` between fields, ``?`` for an
unknown value. They go through the preparation ``docs/data-owners/provisioning.md`` gives,
then the real command."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mbi", reason="the provision extra (mbi) is not installed")
pandas = pytest.importorskip("pandas")

REPO = Path(__file__).resolve().parent.parent
DOMAIN = REPO / "examples-data" / "adult" / "adult.domain.json"

PUBLISHED_ROWS = REPO / "examples-data" / "adult" / "adult-first-40.data"

NAMES = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
]  # fmt: skip


def _prepare(source: Path, destination: Path) -> None:
    """The guide's preparation: ``?`` becomes an empty cell, two columns are left out."""
    frame = pandas.read_csv(
        source, names=NAMES, skipinitialspace=True, na_values="?", dtype=str, comment="|"
    )
    frame = frame.drop(columns=["fnlwgt", "education-num"])
    frame["income"] = frame["income"].str.rstrip(".")
    frame.to_csv(destination, index=False)


@pytest.fixture(scope="module")
def owner_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("adult")
    _prepare(PUBLISHED_ROWS, folder / "train.csv")
    output = folder / "adult.csv.s1"
    result = subprocess.run(
        [
            sys.executable, "-m", "jupyterlab_manatee.provision", str(folder / "train.csv"),
            "--domain", str(DOMAIN), "--epsilon", "3", "--seed", "1", "--iters", "5",
            "--rows", "60", "--force", "--output", str(output),
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return {"folder": folder, "result": result, "output": output}


def test_every_published_value_fits_the_public_domain(owner_run):
    result = owner_run["result"]
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("plan: 40 input rows (not private), 13 columns, epsilon 3")
    assert "clipped" not in result.stdout


def test_the_unknown_values_are_counted_as_empty_cells_of_their_own(owner_run):
    lines = owner_run["result"].stdout.splitlines()
    empties = [line for line in lines if line.startswith("empty (not private)")]
    assert empties == [
        "empty (not private): column 'workclass': 1 of 40 values empty, counted and "
        "synthesised as a value of their own",
        "empty (not private): column 'occupation': 1 of 40 values empty, counted and "
        "synthesised as a value of their own",
        "empty (not private): column 'native-country': 2 of 40 values empty, counted and "
        "synthesised as a value of their own",
    ]


def test_the_output_has_the_domains_columns_and_the_rows_asked_for(owner_run):
    with owner_run["output"].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "age", "workclass", "education", "marital-status", "occupation", "relationship",
        "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
        "income",
    ]  # fmt: skip
    assert len(rows) == 60
    assert {row["income"] for row in rows} <= {"<=50K", ">50K"}
