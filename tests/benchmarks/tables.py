"""Large insurance-like tables for the provisioning benchmark and memory test: the real
insurance rows resampled with jitter, written piece by piece (bounded memory)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
INSURANCE = REPO / "examples-data" / "stage2" / "data" / "insurance.csv.s2"
INSURANCE_DOMAIN = REPO / "tutorials" / "data" / "insurance.domain.json"
PIECE = 250_000


def _source() -> dict[str, np.ndarray]:
    import pyarrow.csv

    table = pyarrow.csv.read_csv(INSURANCE)
    return {name: table.column(name).to_numpy() for name in table.column_names}


def insurance_like(path: Path, rows: int, seed: int = 0) -> Path:
    """``rows`` rows of the insurance table's columns: real rows drawn with replacement,
    ages moved by up to 2 years, bmi and charges by a few percent (2 decimals). CSV, or
    Parquet when ``path`` ends in ``.parquet``."""
    import pyarrow
    import pyarrow.csv
    import pyarrow.parquet

    source = _source()
    rng = np.random.default_rng(seed)
    writer = None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        for start in range(0, rows, PIECE):
            n = min(PIECE, rows - start)
            pick = rng.integers(0, len(source["age"]), n)
            age = np.clip(source["age"][pick] + rng.integers(-2, 3, n), 18, 64)
            bmi = np.round(source["bmi"][pick] * rng.normal(1.0, 0.03, n), 2)
            charges = np.round(source["charges"][pick] * rng.lognormal(0.0, 0.05, n), 2)
            table = pyarrow.table(
                {
                    "age": age.astype(np.int64),
                    "sex": source["sex"][pick],
                    "bmi": bmi,
                    "children": source["children"][pick].astype(np.int64),
                    "smoker": source["smoker"][pick],
                    "region": source["region"][pick],
                    "charges": charges,
                }
            )
            if writer is None:
                if path.suffix == ".parquet":
                    writer = pyarrow.parquet.ParquetWriter(path, table.schema)
                else:
                    options = pyarrow.csv.WriteOptions(quoting_style="none")
                    writer = pyarrow.csv.CSVWriter(path, table.schema, write_options=options)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    return path
