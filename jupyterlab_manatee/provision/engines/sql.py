"""The SQL that reads the private table per the domain, written once for every engine.

Each engine exposes the table as a relation of text columns named as in the domain and
runs these statements; only the few spellings that differ between SQL dialects (string
literals, quoted names, a regular expression's full match) come from its `Dialect`.

Every statement reads the relation through `values`: per column ``t<i>``, the text with
spaces trimmed (NULL when empty), and for a numeric column ``v<i>``, the number (NULL
when the text is not one). What is computed matches the domain file's promises (see
`..domain`): a category's bin is its position among the categories; a number's bin is
the count of inner edges at or below it (so values below the first edge fall into the
first bin, at or above the last edge into the last); an empty cell (NULL, or nothing but
spaces) of a column that may be empty is in the bin after all the others; a number's
decimals are those of its text without trailing zeros (``82.0`` has none), as Python's
``Decimal.normalize`` gives.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from ..domain import CATEGORY, FLOAT, INTEGER, Column, TableDomain

#: A decimal number as text: sign, digits with an optional point, optional exponent.
NUMBER_PATTERN = "^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"

#: The per-column figures of `census`, in the order of its result columns.
CENSUS_FIELDS = ("empty", "unknown", "not_numbers", "fractional", "places", "below", "above")

#: The kinds of bad values `examples` lists.
PROBLEMS = ("unknown", "not_numbers", "fractional")


@dataclass(frozen=True)
class Cells:
    """``count`` equal cells of ``width`` from ``low``: how `histograms` counts a column."""

    name: str
    low: float
    width: float
    count: int


@dataclass(frozen=True)
class Dialect:
    """How one SQL engine spells string literals, names and a regular expression match."""

    name: str
    #: a single quote inside a string literal ("''", or "\\'" where backslashes escape)
    quote_escape: str
    ident_quote: str
    #: the function ``f(text, pattern)`` that is true when the pattern matches somewhere in
    #: the text; every pattern here is anchored (``^...$``), so it matches the whole text
    match_function: str

    def string(self, text: str) -> str:
        if self.quote_escape == "\\'":
            text = text.replace("\\", "\\\\")
        return "'" + text.replace("'", self.quote_escape) + "'"

    def ident(self, name: str) -> str:
        q = self.ident_quote
        return q + name.replace(q, q + q) + q

    def matches(self, expr: str, pattern: str) -> str:
        return f"{self.match_function}({expr}, {self.string(pattern)})"

    def extract(self, expr: str, pattern: str, group: int) -> str:
        return f"regexp_extract({expr}, {self.string(pattern)}, {group})"


DUCKDB = Dialect("duckdb", quote_escape="''", ident_quote='"', match_function="regexp_matches")
SPARK = Dialect("spark", quote_escape="\\'", ident_quote="`", match_function="regexp")


def _double(value: float, dialect: Dialect) -> str:
    """A DOUBLE literal: the text Python's repr gives, parsed by the engine (exact)."""
    return f"CAST({dialect.string(repr(value))} AS DOUBLE)"


def values(domain: TableDomain, relation: str, dialect: Dialect) -> str:
    """The subquery every statement reads: ``t<i>`` (text) and ``v<i>`` (number) per column."""
    texts = ", ".join(
        f"nullif(trim(CAST({dialect.ident(c.name)} AS STRING)), '') AS t{i}"
        for i, c in enumerate(domain.columns)
    )
    parts = []
    for i, column in enumerate(domain.columns):
        parts.append(f"t{i}")
        if column.numeric:
            parts.append(
                f"CASE WHEN {dialect.matches(f't{i}', NUMBER_PATTERN)} "
                f"THEN TRY_CAST(t{i} AS DOUBLE) END AS v{i}"
            )
    return f"(SELECT {', '.join(parts)} FROM (SELECT {texts} FROM {relation}) AS texts) AS vals"


def _places(i: int, dialect: Dialect) -> str:
    """The decimals of number ``t<i>``'s text, trailing zeros dropped (0 if whole)."""
    t = f"t{i}"
    digits = f"replace({dialect.extract(t, '^[+-]?([0-9]*[.]?[0-9]*)', 1)}, '.', '')"
    fraction = f"length({dialect.extract(t, '[.]([0-9]*)', 1)})"
    exponent = f"coalesce(TRY_CAST({dialect.extract(t, '[eE]([+-]?[0-9]+)$', 1)} AS INT), 0)"
    trailing = f"length({dialect.extract(digits, '0*$', 0)})"
    return (
        f"CASE WHEN {dialect.matches(digits, '^0*$')} THEN 0 "
        f"ELSE greatest(0, {fraction} - {exponent} - {trailing}) END"
    )


def _bin(i: int, column: Column, dialect: Dialect) -> str:
    """Column ``i``'s bin: the empty bin (`Column.bins`) for an empty cell of a column
    that may be empty; else 0 for a missing or unknown value, which the checks refuse."""
    empty = f"WHEN t{i} IS NULL THEN {column.bins} " if column.empty else ""
    if column.kind == CATEGORY:
        cases = " ".join(
            f"WHEN t{i} = {dialect.string(c)} THEN {k}" for k, c in enumerate(column.categories)
        )
        return f"CASE {empty}{cases} ELSE 0 END"
    inner = [float(edge) for edge in column.edges[1:-1]]
    cases = " ".join(f"WHEN v{i} < {_double(e, dialect)} THEN {k}" for k, e in enumerate(inner))
    return f"CASE {empty}WHEN v{i} IS NULL THEN 0 {cases} ELSE {len(inner)} END"


def _problem(i: int, column: Column, problem: str, dialect: Dialect) -> str:
    """The condition that makes a value of column ``i`` bad in the way ``problem`` names."""
    if problem == "unknown":
        listed = ", ".join(dialect.string(c) for c in column.categories)
        return f"t{i} IS NOT NULL AND t{i} NOT IN ({listed})"
    if problem == "not_numbers":
        return f"t{i} IS NOT NULL AND v{i} IS NULL"
    if problem == "fractional":
        return f"v{i} IS NOT NULL AND ({_places(i, dialect)}) > 0"
    raise ValueError(f"unknown problem {problem!r}")


def _count(condition: str) -> str:
    return f"coalesce(sum(CASE WHEN {condition} THEN 1 ELSE 0 END), 0)"


def census(domain: TableDomain, relation: str, dialect: Dialect) -> str:
    """One row: the row count, then the `CENSUS_FIELDS` of every column in domain order."""
    parts = ["count(*)"]
    for i, column in enumerate(domain.columns):
        parts.append(_count(f"t{i} IS NULL"))
        if column.kind == CATEGORY:
            parts += [_count(_problem(i, column, "unknown", dialect)), "0", "0", "0", "0", "0"]
            continue
        fractional = (
            _count(_problem(i, column, "fractional", dialect)) if column.kind == INTEGER else "0"
        )
        decimals = (
            f"coalesce(max(CASE WHEN v{i} IS NOT NULL THEN {_places(i, dialect)} END), 0)"
            if column.kind == FLOAT
            else "0"
        )
        low, high = float(column.edges[0]), float(column.edges[-1])
        parts += [
            "0",
            _count(_problem(i, column, "not_numbers", dialect)),
            fractional,
            decimals,
            _count(f"v{i} < {_double(low, dialect)}"),
            _count(f"v{i} >= {_double(high, dialect)}"),
        ]
    return f"SELECT {', '.join(parts)} FROM {values(domain, relation, dialect)}"


def examples(
    domain: TableDomain, name: str, problem: str, relation: str, dialect: Dialect, limit: int
) -> str:
    """The first bad values in text order, each beside the count of different bad values."""
    i = domain.names.index(name)
    condition = _problem(i, domain.columns[i], problem, dialect)
    bad = (
        f"SELECT DISTINCT t{i} AS value FROM {values(domain, relation, dialect)} WHERE {condition}"
    )
    return (
        f"SELECT value, (SELECT count(*) FROM ({bad}) AS every_bad) AS total "
        f"FROM ({bad}) AS some_bad ORDER BY value LIMIT {int(limit)}"
    )


def involved(domain: TableDomain, cliques: Sequence[tuple[str, ...]]) -> list[str]:
    """The columns some clique holds, in the domain's order: those `marginals` returns."""
    wanted = {name for clique in cliques for name in clique}
    return [name for name in domain.names if name in wanted]


def marginals(
    domain: TableDomain, cliques: Sequence[tuple[str, ...]], relation: str, dialect: Dialect
) -> str:
    """The counts of every clique's bin combinations, in one pass (GROUPING SETS).

    A result row holds one bin per `involved` column (NULL where the column is not in the
    row's clique), one ``grouping`` flag per such column (1 where it is not), the count."""
    index = {name: i for i, name in enumerate(domain.names)}
    binned = ", ".join(f"{_bin(i, c, dialect)} AS b{i}" for i, c in enumerate(domain.columns))
    sets = ", ".join("(" + ", ".join(f"b{index[n]}" for n in clique) + ")" for clique in cliques)
    columns = [index[name] for name in involved(domain, cliques)]
    bins = ", ".join(f"b{i}" for i in columns)
    flags = ", ".join(f"grouping(b{i})" for i in columns)
    return (
        f"SELECT {bins}, {flags}, count(*) "
        f"FROM (SELECT {binned} FROM {values(domain, relation, dialect)}) AS binned "
        f"GROUP BY GROUPING SETS ({sets})"
    )


def codes(domain: TableDomain, relation: str, dialect: Dialect) -> str:
    """Every row's bins, in the table's order (for tables small enough to hold)."""
    binned = ", ".join(_bin(i, c, dialect) for i, c in enumerate(domain.columns))
    return f"SELECT {binned} FROM {values(domain, relation, dialect)}"


def typed(domain: TableDomain, relation: str, dialect: Dialect) -> str:
    """The columns as a model reads them: a category's bin (empty: the empty bin), a
    number as a DOUBLE (empty: NULL)."""
    parts = [
        _bin(i, c, dialect) if c.kind == CATEGORY else f"v{i}" for i, c in enumerate(domain.columns)
    ]
    return f"SELECT {', '.join(parts)} FROM {values(domain, relation, dialect)}"


def one_and_two_way(names: Sequence[str]) -> list[tuple[str, ...]]:
    """Every column alone, then every pair in the domain's order: what MST reads."""
    return [(n,) for n in names] + list(itertools.combinations(names, 2))


def histograms(cells: Sequence[Cells], relation: str, dialect: Dialect) -> str:
    """Each column's count per cell, in one pass (GROUPING SETS), outside any domain.

    A column's value falls in cell ``floor((value - low) / width)``, values outside the
    cells clipped into the end ones; an empty value counts in cell -2, text that is not a
    number in cell -1. A result row holds one cell per column (NULL outside its set), one
    ``grouping`` flag per column (1 where it is not the row's), the count."""
    texts = ", ".join(
        f"nullif(trim(CAST({dialect.ident(c.name)} AS STRING)), '') AS t{i}"
        for i, c in enumerate(cells)
    )
    numbers = ", ".join(
        f"t{i}, CASE WHEN {dialect.matches(f't{i}', NUMBER_PATTERN)} "
        f"THEN TRY_CAST(t{i} AS DOUBLE) END AS v{i}"
        for i in range(len(cells))
    )
    located = ", ".join(
        f"CASE WHEN t{i} IS NULL THEN -2 WHEN v{i} IS NULL THEN -1 ELSE CAST(least(greatest("
        f"floor((v{i} - {_double(float(c.low), dialect)}) / {_double(float(c.width), dialect)}),"
        f" 0), {int(c.count) - 1}) AS BIGINT) END AS h{i}"
        for i, c in enumerate(cells)
    )
    columns = range(len(cells))
    sets = ", ".join(f"(h{i})" for i in columns)
    return (
        f"SELECT {', '.join(f'h{i}' for i in columns)}, "
        f"{', '.join(f'grouping(h{i})' for i in columns)}, count(*) "
        f"FROM (SELECT {located} FROM (SELECT {numbers} FROM (SELECT {texts} FROM {relation}) "
        f"AS texts) AS vals) AS located GROUP BY GROUPING SETS ({sets})"
    )
