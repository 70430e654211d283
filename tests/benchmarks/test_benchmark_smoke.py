"""`python -m tests.benchmarks --quick` runs from the repository root and prints the
table of every figure beside its baseline (the numbers themselves are not judged here:
small sizes on a shared CI machine say nothing about the targets)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIGURES = (
    "submit 8M (wall, MB/s of workspace)",
    "submit 8M: Jupyter peak RSS growth",
    "submit 8M: GET /api/status p50/p99/max",
    "output 8M (wall, MB/s)",
    "output 8M: MD5 + write + fsync alone",
    "output 8M: Jupyter peak RSS growth",
    "list jobs per call p50/p99",
    "list jobs proxy overhead p50 (p99)",
    "sdk get_bytes 8 MB from the GCS emulator",
    "sdk open().read 8 MB from the GCS emulator",
)


@pytest.mark.benchmark
@pytest.mark.timeout(120)
def test_the_quick_benchmark_prints_every_figure_beside_its_baseline(tmp_path: Path) -> None:
    result_file = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks", "--quick", "--json", str(result_file)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("jupyterlab-manatee benchmarks, ")
    assert lines[1].split() == ["figure", "measured", "baseline", "ratio", "target", "met?"]
    for figure in FIGURES:
        assert any(line.startswith(figure) for line in lines), figure

    report = json.loads(result_file.read_text())
    assert [row["figure"] for row in report["rows"]] == list(FIGURES)
    for row in report["rows"]:
        assert row["measured"] and row["baseline"], row
        numbers = [v for v in row["values"].values() if isinstance(v, (int, float))]
        # finite numbers; an overhead (a difference of two noisy percentiles) may be < 0
        assert numbers and all(math.isfinite(v) for v in numbers), row


@pytest.mark.benchmark
@pytest.mark.timeout(120)
def test_the_provision_part_runs_without_smartnoise_and_says_so(tmp_path: Path) -> None:
    result_file = tmp_path / "result.json"
    environment = {k: v for k, v in os.environ.items() if k != "MANATEE_SMARTNOISE_PYTHON"}
    done = subprocess.run(
        [
            *(sys.executable, "-m", "tests.benchmarks", "--only", "provision"),
            *("--provision-rows", "2000", "--provision-engines", "duckdb"),
            *("--json", str(result_file)),
        ],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [row] = json.loads(result_file.read_text())["rows"]
    assert row["figure"] == "provision 2,000 rows, duckdb (wall, rows/s, peak RSS)"
    assert row["baseline"].startswith("smartnoise-synth not installed")
    assert row["values"]["wall"] > 0 and row["values"]["max_rss"] > 0
    assert row["values"]["written"] > 0
    assert row["ratio"] is None
