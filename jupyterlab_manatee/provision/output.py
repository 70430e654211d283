"""The synthetic table written piece by piece: CSV, or Parquet for a ``.parquet`` name.

MST's rows come in pieces (`mst.Fit.pieces`); each is written and dropped, so memory does
not grow with the number of rows. The file is written under a temporary name and put in
place at the end (`files.placed`): a failure or Ctrl-C leaves nothing half-written. The
same pieces give the same bytes.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .domain import CATEGORY, EMPTY, INTEGER, TableDomain
from .files import checkpoint, placed
from .mst import Piece

PARQUET_SUFFIXES = (".parquet", ".pq")


def is_parquet(path: str | Path) -> bool:
    return str(path).lower().endswith(PARQUET_SUFFIXES)


def write_pieces(
    target: Path, domain: TableDomain, pieces: Iterable[Piece], *, overwrite: bool
) -> int:
    """Write the pieces to ``target`` (CSV with ``\\n`` line ends, or Parquet with one row
    group per piece); returns the number of rows written."""
    with placed(target, overwrite=overwrite) as temp:
        if is_parquet(target):
            return _parquet(temp, domain, pieces)
        return _csv(temp, domain, pieces)


def _csv(path: Path, domain: TableDomain, pieces: Iterable[Piece]) -> int:
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(domain.names)
        for piece in pieces:
            texts = piece.text()
            writer.writerows(zip(*(texts[name] for name in domain.names), strict=True))
            rows += piece.rows
            checkpoint()
    return rows


def _arrow_type(kind: str) -> Any:
    import pyarrow

    return {CATEGORY: pyarrow.string(), INTEGER: pyarrow.int64()}.get(kind, pyarrow.float64())


def _parquet(path: Path, domain: TableDomain, pieces: Iterable[Piece]) -> int:
    """Typed columns: categories as text, integers as int64, decimals as float64; an
    empty value is null."""
    import pyarrow
    import pyarrow.parquet

    schema = pyarrow.schema([(c.name, _arrow_type(c.kind)) for c in domain.columns])
    rows = 0
    with pyarrow.parquet.ParquetWriter(path, schema) as writer:
        for piece in pieces:
            arrays = []
            for column in domain.columns:
                drawn = piece.drawn[column.name]
                blank = drawn == EMPTY
                if column.kind == CATEGORY:
                    values: Any = np.asarray(column.categories, dtype=object)[
                        np.where(blank, 0, drawn)
                    ]
                else:
                    values = column.number(np.where(blank, 0, drawn))
                mask = blank if blank.any() else None
                arrays.append(pyarrow.array(values, type=_arrow_type(column.kind), mask=mask))
            writer.write_table(pyarrow.Table.from_arrays(arrays, schema=schema))
            rows += piece.rows
            checkpoint()
    return rows
