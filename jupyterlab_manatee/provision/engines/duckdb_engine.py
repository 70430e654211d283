"""DuckDB, the embedded default engine: out of core, CSV and Parquet, local or ``gs://``.

DuckDB streams a CSV or Parquet file through the statements of `.sql` and keeps only the
aggregates, so the tool's memory does not grow with the table; whatever an operator must
hold beyond ``memory_limit`` is spilled to a private temporary folder, removed on close.
A ``gs://`` object is first copied there (see `.sources`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..domain import TableDomain
from ..errors import InputError
from . import DEFAULT_MEMORY_LIMIT, sql
from .base import (
    PARQUET,
    Census,
    Engine,
    Histogram,
    Marginals,
    Source,
    Table,
    census_of,
    fill,
    histograms_of,
    imported,
)
from .sources import checked_header, csv_header, local_copy


def _reason(error: Exception, delimiter: str) -> str:
    """DuckDB's message without its advice, which names options of its own API."""
    lines = []
    for line in str(error).splitlines():
        if line.startswith(("Possible", "*", "  ")) or not line.strip():
            break
        if not line.startswith("Original Line"):
            lines.append(line.replace("Invalid Input Error: ", ""))
    text = "; ".join(lines)
    if "Number of Columns" in text:
        text += f" (values are split at {delimiter!r}; see --delimiter)"
    return text


class DuckDBTable(Table):
    """A table as a DuckDB view of text columns named as the header says."""

    def __init__(
        self, engine: DuckDBEngine, view: str, header: list[str], label: str, delimiter: str = ","
    ) -> None:
        self.engine = engine
        self.view = engine.dialect.ident(view)
        self.header = header
        self.label = label
        self.delimiter = delimiter

    def _run(self, statement: str) -> Any:
        """A fresh cursor per statement: one table's results never cut off another's."""
        try:
            return self.engine.connection.cursor().execute(statement)
        except self.engine.duckdb.Error as error:
            reason = _reason(error, self.delimiter)
            raise InputError(f"cannot read {self.label}: {reason}") from error

    def census(self, domain: TableDomain) -> Census:
        row = self._run(sql.census(domain, self.view, self.engine.dialect)).fetchone()
        return census_of(domain, row)

    def examples(
        self, domain: TableDomain, name: str, problem: str, limit: int = 5
    ) -> tuple[list[str], int]:
        statement = sql.examples(domain, name, problem, self.view, self.engine.dialect, limit)
        rows = self._run(statement).fetchall()
        return [str(value) for value, _ in rows], int(rows[0][1]) if rows else 0

    def marginals(self, domain: TableDomain, cliques: Sequence[tuple[str, ...]]) -> Marginals:
        statement = sql.marginals(domain, cliques, self.view, self.engine.dialect)
        return fill(domain, cliques, self._run(statement).fetchall())

    def batches(self, domain: TableDomain, rows: int = 65_536) -> Iterator[dict[str, np.ndarray]]:
        statement = sql.typed(domain, self.view, self.engine.dialect)
        try:
            reader = self.engine.connection.cursor().sql(statement).to_arrow_reader(rows)
            for batch in reader:
                yield {
                    column.name: batch.column(i)
                    .to_numpy(zero_copy_only=False)
                    .astype(np.float64 if column.numeric else np.int64)
                    for i, column in enumerate(domain.columns)
                }
        except self.engine.duckdb.Error as error:
            reason = _reason(error, self.delimiter)
            raise InputError(f"cannot read {self.label}: {reason}") from error

    def codes(self, domain: TableDomain) -> dict[str, np.ndarray]:
        result = self._run(sql.codes(domain, self.view, self.engine.dialect)).fetchnumpy()
        return {
            column.name: np.ma.filled(np.ma.asarray(values, dtype=np.int64), 0)
            for column, values in zip(domain.columns, result.values(), strict=True)
        }

    def histograms(self, cells: Sequence[sql.Cells]) -> dict[str, Histogram]:
        statement = sql.histograms(cells, self.view, self.engine.dialect)
        return histograms_of(cells, self._run(statement).fetchall())


class DuckDBEngine(Engine):
    """One DuckDB connection, bounded by ``memory_limit``, spilling to a private folder."""

    dialect = sql.DUCKDB

    def __init__(
        self,
        *,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        temp_root: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        gcp_project: str | None = None,
    ) -> None:
        self.duckdb: Any = imported(
            "duckdb",
            "manatee-provision needs the 'provision' extra: "
            "pip install 'jupyterlab_manatee[provision]' (duckdb is missing)",
        )
        self._make_folder(temp_root, gcp_project)
        config = {
            "memory_limit": memory_limit,
            "temp_directory": str(self.folder / "spill"),
            "threads": threads or os.cpu_count() or 1,
            # no extension is installed or loaded behind the user's back
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
        self.connection = self.duckdb.connect(":memory:", config=config)
        self.description = f"DuckDB {self.duckdb.__version__}"

    def open(self, source: Source) -> Table:
        path = local_copy(source.location, self.folder, project=self.gcp_project)
        view = self._view()
        d = self.dialect
        if source.kind == PARQUET:
            relation = f"read_parquet({d.string(str(path))})"
            try:
                described = self.connection.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
            except self.duckdb.Error as error:
                raise InputError(f"cannot read {source.location}: {_reason(error, ',')}") from None
            names = [str(row[0]) for row in described]
            header = checked_header([n.strip() for n in names], source.location)
            select = ", ".join(
                f"{d.ident(raw)} AS {d.ident(name)}"
                for raw, name in zip(names, header, strict=True)
            )
        else:
            header = checked_header(csv_header(path, source), source.location)
            columns = ", ".join(f"{d.string(f'c{i}')}: 'VARCHAR'" for i in range(len(header)))
            relation = (
                f"read_csv({d.string(str(path))}, header = true, auto_detect = false, "
                f"delim = {d.string(source.delimiter)}, quote = '\"', escape = '\"', "
                f"strict_mode = true, columns = {{{columns}}})"
            )
            select = ", ".join(f"c{i} AS {d.ident(name)}" for i, name in enumerate(header))
        self.connection.execute(f"CREATE VIEW {d.ident(view)} AS SELECT {select} FROM {relation}")
        return DuckDBTable(self, view, header, source.location, source.delimiter)

    def from_columns(self, header: list[str], columns: dict[str, Sequence[str]]) -> Table:
        import pyarrow

        view = self._view()
        arrow = pyarrow.table(
            {name: pyarrow.array(list(columns[name]), type=pyarrow.string()) for name in header}
        )
        # a table, not a view: what a connection registers, its cursors do not see
        self.connection.register("incoming_arrow", arrow)
        try:
            self.connection.execute(
                f"CREATE TABLE {self.dialect.ident(view)} AS SELECT * FROM incoming_arrow"
            )
        finally:
            self.connection.unregister("incoming_arrow")
        return DuckDBTable(self, view, list(header), "the table")

    def _stop(self) -> None:
        self.connection.close()
