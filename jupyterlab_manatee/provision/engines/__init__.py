"""Engines that read the private table: counts computed where the data is.

`base` says what an engine offers, `sql` holds the statements every engine runs,
`duckdb_engine` is the embedded default, `spark_engine` runs the same statements on a
Spark master. `open_engine` picks one by name.
"""

from __future__ import annotations

from typing import Any

from .base import Census, ColumnCensus, Engine, Histogram, Marginals, Source, Table

ENGINES = ("duckdb", "spark")
#: DuckDB's memory for its own work (aggregates, sorting, buffers); past it, it spills.
DEFAULT_MEMORY_LIMIT = "256MB"
#: the help of ``--engine`` and ``--spark-master``, the same in every command that reads data
ENGINE_HELP = "what reads the table: duckdb (embedded, the default) or spark"
SPARK_MASTER_HELP = (
    "the Spark master for --engine spark (default local[*]); on a cluster (a master not "
    "local...) Spark reads a gs:// input itself: Dataproc has Google's Cloud Storage "
    "connector, any other cluster needs it (spark.jars)"
)


def open_engine(name: str = "duckdb", **options: Any) -> Engine:
    """A new engine by name (``duckdb`` or ``spark``); ``options`` go to its constructor."""
    if name == "duckdb":
        from .duckdb_engine import DuckDBEngine

        return DuckDBEngine(**options)
    if name == "spark":
        from .spark_engine import SparkEngine

        return SparkEngine(**options)
    raise ValueError(f"unknown engine {name!r}: choose among {', '.join(ENGINES)}")


__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "ENGINES",
    "ENGINE_HELP",
    "SPARK_MASTER_HELP",
    "Census",
    "ColumnCensus",
    "Engine",
    "Histogram",
    "Marginals",
    "Source",
    "Table",
    "open_engine",
]
