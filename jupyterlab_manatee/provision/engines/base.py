"""What an engine offers: the only way the provisioning tool reads a private table.

MST and the checks around it need counts, never rows: the row count, 1-way and 2-way
marginals (exact integer counts over the domain's bins), and per column how many values
are empty, unknown, not numbers, too precise or outside the edges. An engine computes
these where the data is (DuckDB embedded, or Spark) with the SQL of `.sql`, so the
tool's memory does not grow with the table. `Table.batches` streams typed columns in
bounded pieces for the report's linear model, which sums over rows.
"""

from __future__ import annotations

import abc
import importlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType

import numpy as np

from ..domain import TableDomain
from ..errors import MissingExtraError
from ..files import private_folders
from . import sql

#: Where a table is: a local path or a ``gs://`` URL, its format and its CSV delimiter.
CSV, PARQUET = "csv", "parquet"


@dataclass(frozen=True)
class Source:
    """A table to read: ``location`` (path or ``gs://bucket/object``), ``csv`` or
    ``parquet`` (by the name's ending unless given), and the CSV's delimiter."""

    location: str
    format: str = ""
    delimiter: str = ","

    @property
    def kind(self) -> str:
        if self.format:
            return self.format
        lowered = self.location.lower()
        return PARQUET if lowered.endswith((".parquet", ".pq")) else CSV


@dataclass(frozen=True)
class ColumnCensus:
    """One column's counts of what the domain refuses or clips (see `sql.CENSUS_FIELDS`)."""

    empty: int = 0
    unknown: int = 0
    not_numbers: int = 0
    fractional: int = 0
    #: the most decimals any value has (float columns)
    places: int = 0
    below: int = 0
    above: int = 0

    @property
    def clipped(self) -> int:
        return self.below + self.above


@dataclass(frozen=True)
class Census:
    """The row count and each domain column's `ColumnCensus` (columns the table has)."""

    rows: int
    columns: dict[str, ColumnCensus] = field(default_factory=dict)


@dataclass(frozen=True)
class Histogram:
    """One column's counts over its cells (values outside clipped into the end cells),
    and how many of its values are empty or text that is not a number."""

    counts: np.ndarray
    empty: int = 0
    not_numbers: int = 0


#: Count arrays by clique (a tuple of column names), shaped by the cliques' bin counts.
Marginals = dict[tuple[str, ...], np.ndarray]


class Table(abc.ABC):
    """One private table, read through its engine."""

    #: the column names, as the header or schema gives them (spaces trimmed)
    header: list[str]
    #: what the table is called in messages
    label: str

    @abc.abstractmethod
    def census(self, domain: TableDomain) -> Census:
        """Row count and per-column problem counts of the domain's columns (one pass)."""

    @abc.abstractmethod
    def examples(
        self, domain: TableDomain, name: str, problem: str, limit: int = 5
    ) -> tuple[list[str], int]:
        """The first ``limit`` distinct bad values of a column in text order, and how many
        distinct ones there are; ``problem`` is one of `sql.PROBLEMS`."""

    @abc.abstractmethod
    def marginals(self, domain: TableDomain, cliques: Sequence[tuple[str, ...]]) -> Marginals:
        """Exact counts of each clique's bin combinations, in one pass."""

    @abc.abstractmethod
    def batches(self, domain: TableDomain, rows: int = 65_536) -> Iterator[dict[str, np.ndarray]]:
        """The domain's columns in pieces of at most ``rows``: a category as its bin
        (int64), a number as float64 (NaN when missing)."""

    @abc.abstractmethod
    def codes(self, domain: TableDomain) -> dict[str, np.ndarray]:
        """Every row's bins, in order: whole columns, for tables small enough to hold."""

    @abc.abstractmethod
    def histograms(self, cells: Sequence[sql.Cells]) -> dict[str, Histogram]:
        """Each column's count per cell (see `sql.histograms`), in one pass: what the
        drafted domain's DP quantiles read instead of the values."""


def imported(name: str, advice: str) -> ModuleType:
    """The module ``name``, or `MissingExtraError` saying ``advice`` (how to install it):
    an engine's package is optional, imported only when that engine is chosen."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise MissingExtraError(advice) from error


class Engine(abc.ABC):
    """Opens tables; closing it ends its work and removes its temporary files.

    Every engine has a private folder (its spill space and its copies of ``gs://``
    inputs), made by `_make_folder` and removed by `close` whatever `_stop` raises."""

    #: the engine's name and version, for the report
    description: str
    #: the engine's private temporary folder
    folder: Path
    #: the project for ``gs://`` inputs
    gcp_project: str | None
    _tables: int

    def _make_folder(
        self, temp_root: str | os.PathLike[str] | None, gcp_project: str | None
    ) -> None:
        """Make the private folder; an engine calls it once its package is imported."""
        self.folder = Path(tempfile.mkdtemp(prefix="manatee-provision-", dir=temp_root))
        private_folders.add(self.folder)
        self.gcp_project = gcp_project
        self._tables = 0

    def _view(self) -> str:
        """A new name for a table's view, unique within the engine."""
        self._tables += 1
        return f"table_{self._tables}"

    @abc.abstractmethod
    def open(self, source: Source) -> Table:
        """The table at ``source``; raises `InputError` when it cannot be read."""

    @abc.abstractmethod
    def from_columns(self, header: list[str], columns: dict[str, Sequence[str]]) -> Table:
        """A table given as text columns in memory (the library's in-memory API)."""

    @abc.abstractmethod
    def _stop(self) -> None:
        """End the engine's own work (its connection or session)."""

    def close(self) -> None:
        """End the engine's work and remove its temporary files."""
        try:
            self._stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            private_folders.discard(self.folder)

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def census_of(domain: TableDomain, row: Sequence[object]) -> Census:
    """The `Census` in the one row of `sql.census`."""
    fields = len(sql.CENSUS_FIELDS)
    columns = {
        column.name: ColumnCensus(
            *(int(v) for v in row[1 + i * fields : 1 + (i + 1) * fields])  # type: ignore[call-overload]
        )
        for i, column in enumerate(domain.columns)
    }
    return Census(int(row[0]), columns)  # type: ignore[call-overload]


def fill(
    domain: TableDomain, cliques: Sequence[tuple[str, ...]], rows: Sequence[Sequence[object]]
) -> Marginals:
    """Count arrays from the rows of `sql.marginals` (bins, grouping flags, count).

    Each array is indexed by bin in the domain's column order, whatever order the engine
    returned its groups in: the same table gives the same arrays, value for value."""
    names = sql.involved(domain, cliques)
    sizes = {c.name: c.size for c in domain.columns}
    result = {clique: np.zeros([sizes[n] for n in clique], dtype=np.int64) for clique in cliques}
    by_members = {frozenset(clique): clique for clique in cliques}
    d = len(names)
    for row in rows:
        bins, flags, count = row[:d], row[d : 2 * d], row[2 * d]
        members = frozenset(n for n, flag in zip(names, flags, strict=True) if not flag)
        clique = by_members[members]
        index = tuple(int(bins[names.index(n)]) for n in clique)  # type: ignore[call-overload]
        result[clique][index] += int(count)  # type: ignore[call-overload]
    return result


def histograms_of(
    cells: Sequence[sql.Cells], rows: Sequence[Sequence[object]]
) -> dict[str, Histogram]:
    """`Histogram`s from the rows of `sql.histograms` (cells, grouping flags, count)."""
    d = len(cells)
    counts = {c.name: np.zeros(c.count, dtype=np.int64) for c in cells}
    other = {c.name: [0, 0] for c in cells}  # empty, not numbers
    for row in rows:
        i = [int(flag) for flag in row[d : 2 * d]].index(0)  # type: ignore[call-overload]
        cell, count = int(row[i]), int(row[2 * d])  # type: ignore[call-overload]
        name = cells[i].name
        if cell >= 0:
            counts[name][cell] += count
        else:
            other[name][cell + 2] += count
    return {n: Histogram(counts[n], *other[n]) for n in counts}


__all__ = [
    "CSV",
    "PARQUET",
    "Census",
    "ColumnCensus",
    "Engine",
    "Histogram",
    "Marginals",
    "Source",
    "Table",
    "census_of",
    "fill",
    "histograms_of",
    "imported",
    "sql",
]
