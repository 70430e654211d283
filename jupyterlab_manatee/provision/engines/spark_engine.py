"""Spark, for tables that live on a cluster: the same statements as DuckDB (`.sql`).

``--engine spark --spark-master URL`` (default ``local[*]``) runs the counts on that
master; only aggregates come back to the tool. With a ``local...`` master a ``gs://``
object is copied into the engine's private folder first, as for DuckDB (`.sources`); on
a cluster (any other master) Spark is given the ``gs://`` URL itself, since its executors
cannot read the driver's disk: they read the bucket through Google's Cloud Storage
connector, which Dataproc has and any other cluster needs on its classpath
(``spark.jars``). Spark needs Java 17 or later and ``pip install pyspark``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..domain import TableDomain
from ..errors import InputError
from . import sql
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
from .sources import checked_header, csv_header, spark_location


class SparkTable(Table):
    """A table as a Spark temporary view of text columns named as the header says."""

    def __init__(self, engine: SparkEngine, view: str, header: list[str], label: str) -> None:
        self.engine = engine
        self.view = engine.dialect.ident(view)
        self.header = header
        self.label = label

    def _rows(self, statement: str) -> list[Any]:
        try:
            return self.engine.session.sql(statement).collect()
        except Exception as error:  # py4j and Spark raise many kinds; all mean "cannot read"
            raise InputError(f"cannot read {self.label}: {_first_line(error)}") from error

    def census(self, domain: TableDomain) -> Census:
        (row,) = self._rows(sql.census(domain, self.view, self.engine.dialect))
        return census_of(domain, row)

    def examples(
        self, domain: TableDomain, name: str, problem: str, limit: int = 5
    ) -> tuple[list[str], int]:
        statement = sql.examples(domain, name, problem, self.view, self.engine.dialect, limit)
        rows = self._rows(statement)
        return [str(row[0]) for row in rows], int(rows[0][1]) if rows else 0

    def marginals(self, domain: TableDomain, cliques: Sequence[tuple[str, ...]]) -> Marginals:
        statement = sql.marginals(domain, cliques, self.view, self.engine.dialect)
        return fill(domain, cliques, [tuple(row) for row in self._rows(statement)])

    def batches(self, domain: TableDomain, rows: int = 65_536) -> Iterator[dict[str, np.ndarray]]:
        """Rows streamed a partition at a time (``toLocalIterator``), gathered in pieces."""
        frame = self.engine.session.sql(sql.typed(domain, self.view, self.engine.dialect))
        piece: list[Any] = []
        for row in frame.toLocalIterator():
            piece.append(tuple(row))
            if len(piece) == rows:
                yield _columns(domain, piece)
                piece = []
        if piece:
            yield _columns(domain, piece)

    def codes(self, domain: TableDomain) -> dict[str, np.ndarray]:
        rows = self._rows(sql.codes(domain, self.view, self.engine.dialect))
        return {
            column.name: np.array([row[i] for row in rows], dtype=np.int64)
            for i, column in enumerate(domain.columns)
        }

    def histograms(self, cells: Sequence[sql.Cells]) -> dict[str, Histogram]:
        statement = sql.histograms(cells, self.view, self.engine.dialect)
        return histograms_of(cells, [tuple(row) for row in self._rows(statement)])


#: Spark's own words for an error: its class in capitals and brackets, then the message
_SPARK_REASON = re.compile(r"\[[A-Z][A-Z_]*(?:\.[A-Z][A-Z_]*)*\] [^\n]*")


def _first_line(error: Exception) -> str:
    """Spark's message without the JVM's stack trace. A failure on an executor reaches the
    driver as "An error occurred while calling o126.collectToPython", the reason deep in
    the trace: the first error class there (such as ``[FAILED_READ_FILE.FILE_NOT_EXIST]``
    with the path) is what the data owner can act on."""
    text = str(error).strip()
    reason = _SPARK_REASON.search(text)
    if reason:
        return reason.group(0).strip()
    return text.splitlines()[0] if text else repr(error)


def _columns(domain: TableDomain, rows: list[Any]) -> dict[str, np.ndarray]:
    result = {}
    for i, column in enumerate(domain.columns):
        values = [row[i] for row in rows]
        if column.numeric:
            result[column.name] = np.array(
                [np.nan if v is None else v for v in values], dtype=np.float64
            )
        else:
            result[column.name] = np.array(values, dtype=np.int64)
    return result


class SparkEngine(Engine):
    """A Spark session on ``master``, its scratch space in a private folder."""

    dialect = sql.SPARK

    def __init__(
        self,
        *,
        master: str = "local[*]",
        temp_root: str | Path | None = None,
        gcp_project: str | None = None,
    ) -> None:
        advice = "--engine spark needs pyspark: pip install 'jupyterlab_manatee[spark]'"
        pyspark: Any = imported("pyspark", advice)
        session_class: Any = imported("pyspark.sql", advice).SparkSession
        self._make_folder(temp_root, gcp_project)
        self.master = master
        self.session = (
            session_class.builder.master(master)
            .appName("manatee-provision")
            .config("spark.ui.enabled", "false")
            .config("spark.local.dir", str(self.folder / "spill"))
            .config("spark.sql.session.timeZone", "UTC")
            # the aggregates are small: a few partitions, not Spark's default 200
            .config("spark.sql.shuffle.partitions", "8")
            .getOrCreate()
        )
        self.session.sparkContext.setLogLevel("ERROR")
        self.description = f"Spark {pyspark.__version__} on {master}"

    def open(self, source: Source) -> Table:
        from pyspark.sql.types import StringType, StructField, StructType

        path = spark_location(
            source.location, self.folder, master=self.master, project=self.gcp_project
        )
        view = self._view()
        if source.kind == PARQUET:
            try:
                frame = self.session.read.parquet(path)
            except Exception as error:  # as in SparkTable._rows
                raise InputError(f"cannot read {source.location}: {_first_line(error)}") from error
            header = checked_header([n.strip() for n in frame.columns], source.location)
            frame = frame.toDF(*header)
        else:
            header = checked_header(
                csv_header(path, source, project=self.gcp_project), source.location
            )
            schema = StructType(
                [StructField(f"c{i}", StringType(), True) for i in range(len(header))]
            )
            frame = self.session.read.csv(
                path,
                schema=schema,
                header=True,
                sep=source.delimiter,
                quote='"',
                escape='"',
                mode="FAILFAST",
                enforceSchema=True,
            ).select(*(f"c{i}" for i in range(len(header))))
            frame = frame.toDF(*header)
        frame.createOrReplaceTempView(view)
        return SparkTable(self, view, header, source.location)

    def from_columns(self, header: list[str], columns: dict[str, Sequence[str]]) -> Table:
        from pyspark.sql.types import StringType, StructField, StructType

        view = self._view()
        schema = StructType([StructField(name, StringType(), True) for name in header])
        rows = list(zip(*(list(columns[name]) for name in header), strict=True))
        self.session.createDataFrame(rows, schema=schema).createOrReplaceTempView(view)
        return SparkTable(self, view, list(header), "the table")

    def _stop(self) -> None:
        self.session.stop()
