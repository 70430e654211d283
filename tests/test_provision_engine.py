"""The engine through which manatee-provision reads the private table (DuckDB): exact
counts per bin, the checks' census, CSV, Parquet and gs:// inputs, output written in
pieces with the same bytes for the same seed, and a table larger than the memory the
run is allowed."""

from __future__ import annotations

import csv
import json
import random
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("duckdb", reason="the provision extra (duckdb) is not installed")

from jupyterlab_manatee.provision import InputError, parse_domain
from jupyterlab_manatee.provision.engines import ColumnCensus, Source, open_engine
from jupyterlab_manatee.provision.engines.sql import one_and_two_way
from tests.benchmarks.tables import insurance_like

REPO = Path(__file__).resolve().parent.parent
INSURANCE_DOMAIN = REPO / "tutorials" / "data" / "insurance.domain.json"
STAGE2 = REPO / "examples-data" / "stage2" / "data" / "insurance.csv.s2"

DOMAIN_SPEC = [
    {"name": "color", "type": "category", "categories": ["red", "green", "blue"]},
    {"name": "age", "type": "integer", "edges": [0, 10, 20, 30]},
    {"name": "score", "type": "float", "edges": [0, 0.5, 1], "decimals": 3},
]
DOMAIN = parse_domain({"columns": DOMAIN_SPEC})
#: categories, integers (one written 10.0, one with spaces), decimals, and values below
#: the first edge or at and above the last one, which fall into the end bins
ROWS = [
    ("red", "5", "0.25"),
    ("red", " 15 ", "0.75"),
    ("green", "25", "0.5"),
    ("blue", "-5", "0.1"),
    ("blue", "30", "1.5"),
    ("green", "10.0", "-0.1"),
    ("red", "9", "0.49"),
    ("blue", "99", "0.99"),
]


def write_csv(path: Path, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "small.csv", ROWS, ("color", "age", "score"))


def marginals_of(source: Source) -> dict[tuple[str, ...], list]:
    with open_engine() as engine:
        counts = engine.open(source).marginals(DOMAIN, one_and_two_way(DOMAIN.names))
    return {clique: array.tolist() for clique, array in counts.items()}


EXPECTED = {
    ("color",): [3, 2, 3],
    ("age",): [3, 2, 3],
    ("score",): [4, 4],
    ("color", "age"): [[2, 1, 0], [0, 1, 1], [1, 0, 2]],
    ("color", "score"): [[2, 1], [1, 1], [1, 2]],
    ("age", "score"): [[3, 0], [1, 1], [0, 3]],
}


# -- counts ----------------------------------------------------------------------------
def test_the_engine_counts_every_bin_of_a_small_table_as_the_domain_says(small_csv):
    assert marginals_of(Source(str(small_csv))) == EXPECTED


def test_the_counts_are_exact_integers_indexed_by_bin():
    with open_engine() as engine:
        table = engine.from_columns(["color", "age", "score"], dict(zip(
            ["color", "age", "score"], (list(c) for c in zip(*ROWS, strict=True)), strict=True
        )))  # fmt: skip
        counts = table.marginals(DOMAIN, [("color", "score")])[("color", "score")]
    assert counts.dtype == np.int64 and counts.shape == (3, 2)


def test_the_census_counts_what_the_domain_refuses_or_clips(tmp_path):
    rows = [*ROWS, ("purple", "", "abc"), ("red", "4.5", "0.1234"), ("", "7", "0.2")]
    path = write_csv(tmp_path / "bad.csv", rows, ("color", "age", "score"))
    with open_engine() as engine:
        census = engine.open(Source(str(path))).census(DOMAIN)
    assert census.rows == 11
    assert census.columns == {
        "color": ColumnCensus(empty=1, unknown=1),
        "age": ColumnCensus(empty=1, fractional=1, below=1, above=2),
        "score": ColumnCensus(not_numbers=1, places=4, below=1, above=1),
    }


def test_a_row_with_too_many_values_is_refused_with_its_line_and_the_delimiter(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("color,age,score\nred,5,0.25\nred,5,0.25,9\n")
    with open_engine() as engine, pytest.raises(InputError) as caught:
        engine.open(Source(str(path))).census(DOMAIN)
    assert "Line: 3" in str(caught.value)
    assert "values are split at ','; see --delimiter" in str(caught.value)


def test_a_parquet_table_gives_the_same_counts_as_its_csv(tmp_path):
    import pyarrow
    import pyarrow.parquet

    table = pyarrow.table(
        {
            "color": [r[0] for r in ROWS],
            "age": [int(float(r[1])) for r in ROWS],  # typed: 10.0 is stored as 10
            "score": [float(r[2]) for r in ROWS],
        }
    )
    pyarrow.parquet.write_table(table, tmp_path / "small.parquet")
    assert marginals_of(Source(str(tmp_path / "small.parquet"))) == EXPECTED


# -- empty values ----------------------------------------------------------------------
#: the same columns, each of which may be empty (an empty bin after the others)
DOMAIN_WITH_EMPTIES = parse_domain(
    {"columns": [{**c, "empty": True} for c in json.loads(json.dumps(DOMAIN_SPEC))]}
)
#: ROWS and five rows with empty cells (empty, or only spaces) beside values in and out
#: of the edges
ROWS_WITH_EMPTIES = [
    *ROWS,
    ("", "12", "0.3"),
    ("green", "", "0.7"),
    ("blue", "  ", ""),
    ("red", "31", ""),
    ("  ", "", "2.0"),
]
#: the last index of each column is its empty bin
EXPECTED_WITH_EMPTIES = {
    ("color",): [4, 3, 4, 2],
    ("age",): [3, 3, 4, 3],
    ("score",): [5, 6, 2],
    ("color", "age"): [[2, 1, 1, 0], [0, 1, 1, 1], [1, 0, 2, 1], [0, 1, 0, 1]],
    ("color", "score"): [[2, 1, 1], [1, 2, 0], [1, 2, 1], [1, 1, 0]],
    ("age", "score"): [[3, 0, 0], [2, 1, 0], [0, 3, 1], [0, 2, 1]],
}


def empties_csv(folder: Path) -> Path:
    return write_csv(folder / "empties.csv", ROWS_WITH_EMPTIES, ("color", "age", "score"))


def empties_parquet(folder: Path) -> Path:
    """ROWS_WITH_EMPTIES typed, each empty cell a null (the color of only spaces kept as
    text: it is empty too)."""
    import pyarrow
    import pyarrow.parquet

    def number(text: str, kind: type) -> object:
        return kind(float(text)) if text.strip() else None

    table = pyarrow.table(
        {
            "color": [r[0] or None for r in ROWS_WITH_EMPTIES],
            "age": pyarrow.array([number(r[1], int) for r in ROWS_WITH_EMPTIES], pyarrow.int64()),
            "score": [number(r[2], float) for r in ROWS_WITH_EMPTIES],
        }
    )
    pyarrow.parquet.write_table(table, folder / "empties.parquet")
    return folder / "empties.parquet"


def counts_with_empties(source: Source) -> dict[tuple[str, ...], list]:
    with open_engine() as engine:
        table = engine.open(source)
        counts = table.marginals(DOMAIN_WITH_EMPTIES, one_and_two_way(DOMAIN.names))
    return {clique: array.tolist() for clique, array in counts.items()}


def test_empty_cells_are_counted_in_an_empty_bin_after_the_others(tmp_path):
    assert counts_with_empties(Source(str(empties_csv(tmp_path)))) == EXPECTED_WITH_EMPTIES


def test_parquet_nulls_count_the_same_as_empty_csv_fields(tmp_path):
    assert counts_with_empties(Source(str(empties_parquet(tmp_path)))) == EXPECTED_WITH_EMPTIES


def test_the_census_counts_empty_cells_and_clips_only_values_that_are_there(tmp_path):
    with open_engine() as engine:
        census = engine.open(Source(str(empties_csv(tmp_path)))).census(DOMAIN_WITH_EMPTIES)
    assert census.rows == 13
    assert census.columns == {
        "color": ColumnCensus(empty=2),
        "age": ColumnCensus(empty=3, below=1, above=3),
        "score": ColumnCensus(empty=2, places=2, below=1, above=2),
    }


def test_an_empty_cell_in_a_column_that_may_not_be_empty_is_refused_as_before(tmp_path):
    with open_engine() as engine, pytest.raises(InputError) as caught:
        table = engine.open(Source(str(empties_csv(tmp_path))))
        DOMAIN.check(table, max_clipped_share=None)
    message = str(caught.value)
    assert "  - column 'color': 2 empty value(s): fill or drop them first" in message
    assert "  - column 'age': 3 empty value(s)" in message
    assert "  - column 'score': 2 empty value(s)" in message


@pytest.fixture
def gcs_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from gcp_storage_emulator.server import create_server
    from google.cloud import storage

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        yield storage.Client(project="test")
    finally:
        server.wipe()
        server.stop()


def test_a_gs_table_is_read_through_the_gcs_emulator(gcs_emulator, small_csv):
    bucket = gcs_emulator.create_bucket("stage2-bucket")
    bucket.blob("tables/small.csv").upload_from_filename(str(small_csv))
    assert marginals_of(Source("gs://stage2-bucket/tables/small.csv")) == EXPECTED


def test_a_missing_gs_object_is_an_input_error(gcs_emulator):
    gcs_emulator.create_bucket("stage2-bucket")
    with open_engine() as engine, pytest.raises(InputError, match="no such bucket or object"):
        engine.open(Source("gs://stage2-bucket/nothing.csv"))


def test_the_engine_removes_its_temporary_folder_with_the_gs_copy(gcs_emulator, small_csv):
    bucket = gcs_emulator.create_bucket("stage2-bucket")
    bucket.blob("small.csv").upload_from_filename(str(small_csv))
    with open_engine() as engine:
        engine.open(Source("gs://stage2-bucket/small.csv"))
        folder = engine.folder  # type: ignore[attr-defined]
        assert [p.name for p in folder.glob("input-*")] == ["input-0-small.csv"]
    assert not folder.exists()


# -- the command: same seed, same bytes ----------------------------------------------
def provision(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupyterlab_manatee.provision", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def quick(table: Path | str, output: Path, *more: str) -> subprocess.CompletedProcess[str]:
    return provision(
        str(table), "--domain", str(INSURANCE_DOMAIN), "--epsilon", "3", "--seed", "11",
        "--iters", "20", "--output", str(output), *more,
    )  # fmt: skip


def test_the_same_table_in_another_row_order_gives_the_same_bytes(tmp_path):
    lines = STAGE2.read_text().splitlines()
    body = lines[1:]
    random.Random(3).shuffle(body)
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("\n".join([lines[0], *body]) + "\n")
    first, second = quick(STAGE2, tmp_path / "a.csv"), quick(shuffled, tmp_path / "b.csv")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


@pytest.mark.parametrize("name", ["out.csv", "out.parquet"])
def test_the_same_seed_writes_the_same_bytes_over_several_pieces(tmp_path, name):
    # 250,000 rows: three pieces of at most 100,000
    first = quick(STAGE2, tmp_path / "1" / name, "--rows", "250000")
    second = quick(STAGE2, tmp_path / "2" / name, "--rows", "250000")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes()


def test_a_parquet_output_holds_typed_columns_with_the_domains_values(tmp_path):
    import pyarrow.parquet

    result = quick(STAGE2, tmp_path / "out.parquet", "--rows", "5000")
    assert result.returncode == 0, result.stderr
    table = pyarrow.parquet.read_table(tmp_path / "out.parquet")
    assert [(f.name, str(f.type)) for f in table.schema] == [
        ("age", "int64"), ("sex", "string"), ("bmi", "double"), ("children", "int64"),
        ("smoker", "string"), ("region", "string"), ("charges", "double"),
    ]  # fmt: skip
    assert table.num_rows == 5000
    assert set(table.column("region").to_pylist()) == {
        "northeast", "northwest", "southeast", "southwest",
    }  # fmt: skip
    ages = table.column("age").to_numpy()
    assert ages.min() >= 18 and ages.max() < 65


def test_a_parquet_input_on_gs_is_provisioned_with_a_report(tmp_path, gcs_emulator):
    table = insurance_like(tmp_path / "insurance.parquet", 20_000)
    gcs_emulator.create_bucket("stage2-bucket").blob("insurance.parquet").upload_from_filename(
        str(table)
    )
    report = tmp_path / "report.json"
    result = quick(
        "gs://stage2-bucket/insurance.parquet", tmp_path / "out.csv", "--report", str(report)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("plan: 20000 input rows (not private), 7 columns")
    saved = json.loads(report.read_text())
    assert saved["input"] == "gs://stage2-bucket/insurance.parquet"
    assert saved["engine"].startswith("DuckDB ")
    assert saved["not_private"]["input_rows"] == 20000


#: A table of 4,000 rows in which 20% of the colors, 30% of the ages and 10% of the
#: scores are empty.
EMPTY_SHARES = {"color": 0.2, "age": 0.3, "score": 0.1}


def table_with_empties(folder: Path) -> tuple[Path, Path]:
    """The table (CSV) and its domain file, every column of which may be empty."""
    rng = random.Random(8)
    rows = []
    for _ in range(4000):
        color = rng.choice(["red", "green", "blue"])
        age = str(rng.randrange(0, 30))
        score = f"0.{rng.randrange(100):02d}"
        rows.append(
            tuple(
                "" if rng.random() < EMPTY_SHARES[name] else value
                for name, value in zip(("color", "age", "score"), (color, age, score), strict=True)
            )
        )
    domain = folder / "empties.domain.json"
    domain.write_text(json.dumps({"columns": [{**c, "empty": True} for c in DOMAIN_SPEC]}))
    return write_csv(folder / "empties.csv", rows, ("color", "age", "score")), domain


def provision_empties(table: Path, domain: Path, output: Path) -> subprocess.CompletedProcess:
    return provision(
        str(table), "--domain", str(domain), "--epsilon", "3", "--seed", "6",
        "--iters", "50", "--rows", "4000", "--output", str(output),
    )  # fmt: skip


def test_a_table_with_empty_cells_gives_empty_cells_in_about_the_same_share(tmp_path):
    table, domain = table_with_empties(tmp_path)
    first = provision_empties(table, domain, tmp_path / "1.csv")
    second = provision_empties(table, domain, tmp_path / "2.csv")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert (tmp_path / "1.csv").read_bytes() == (tmp_path / "2.csv").read_bytes()
    with (tmp_path / "1.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4000
    shares = {name: sum(row[name] == "" for row in rows) / 4000 for name in EMPTY_SHARES}
    for name, share in EMPTY_SHARES.items():
        assert abs(shares[name] - share) < 0.03, shares
    filled = {row["color"] for row in rows} - {""}
    assert filled == {"red", "green", "blue"}
    assert "empty (not private): column 'age': " in first.stdout


def test_a_parquet_output_holds_nulls_for_the_empty_values(tmp_path):
    import pyarrow.parquet

    table, domain = table_with_empties(tmp_path)
    result = provision_empties(table, domain, tmp_path / "out.parquet")
    assert result.returncode == 0, result.stderr
    written = pyarrow.parquet.read_table(tmp_path / "out.parquet")
    assert [str(f.type) for f in written.schema] == ["string", "int64", "double"]
    shares = {name: written.column(name).null_count / 4000 for name in EMPTY_SHARES}
    for name, share in EMPTY_SHARES.items():
        assert abs(shares[name] - share) < 0.03, shares


def test_ctrl_c_during_a_run_removes_the_engines_private_folder(tmp_path):
    temp = tmp_path / "engine-temp"
    temp.mkdir()
    # as from a terminal, whose Ctrl-C raises KeyboardInterrupt (see test_provision_owner)
    start = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv[0] = 'manatee-provision'; "
        "runpy.run_module('jupyterlab_manatee.provision', run_name='__main__')"
    )
    process = subprocess.Popen(
        [
            sys.executable, "-c", start, str(STAGE2), "--domain", str(INSURANCE_DOMAIN),
            "--epsilon", "3", "--temp-dir", str(temp), "--output", str(tmp_path / "o.csv"),
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline().startswith("plan:")  # the engine has read the table
    assert len(list(temp.iterdir())) == 1
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert list(temp.iterdir()) == []


# -- memory --------------------------------------------------------------------------
#: The run's data segment limit (RLIMIT_DATA). Reading the 2,000,000-row table whole, as
#: the tool did before its engine, needs about 3 GiB and fails under it; the engine's
#: run peaks at about 0.8 GiB.
DATA_LIMIT = 1536 << 20

LIMITED = """
import resource, runpy, sys
resource.setrlimit(resource.RLIMIT_DATA, ({limit}, {limit}))
sys.argv = ["manatee-provision", *sys.argv[1:]]
runpy.run_module("jupyterlab_manatee.provision", run_name="__main__")
"""


@pytest.mark.timeout(600)
def test_a_table_larger_than_the_memory_limit_is_provisioned_under_it(tmp_path):
    table = insurance_like(tmp_path / "big.csv", 2_000_000)
    output = tmp_path / "out.csv"
    result = subprocess.run(
        [
            sys.executable, "-c", LIMITED.format(limit=DATA_LIMIT), str(table),
            "--domain", str(INSURANCE_DOMAIN), "--epsilon", "3", "--seed", "5",
            "--iters", "100", "--rows", "200000", "--output", str(output),
        ],
        capture_output=True, text=True, cwd=REPO, timeout=560,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("plan: 2000000 input rows (not private), 7 columns")
    with output.open() as handle:
        assert sum(1 for _ in handle) == 200_001
    assert resource.RLIMIT_DATA  # the limit exists on this platform
