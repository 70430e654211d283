"""The domain file: each column's categories or numeric bins, fixed without the data.

Differential privacy protects the *measurements* MST makes; a domain built from the data
(its distinct values, its minimum and maximum) would leak real values around them. So the
data owner writes the domain from public knowledge (a form's choices, legal age limits,
standard cut-offs) in a JSON file::

    {"columns": [
      {"name": "age", "type": "integer", "edges": [18, 25, 35, 45, 55, 65]},
      {"name": "smoker", "type": "category", "categories": ["no", "yes"]},
      {"name": "bmi", "type": "float", "edges": [15, 18.5, 25, 30, 40, 55], "decimals": 4}
    ]}

* ``category``: the listed values, in this order. Any other value in the input is an error.
* ``integer``: bins ``[edges[i], edges[i+1])`` of whole numbers; an output value is drawn
  uniformly among the integers of its bin.
* ``float``: the same bins; an output value is drawn uniformly on the grid of
  ``10**-decimals`` inside its bin, **with a non-zero last decimal**. The input must have
  fewer than ``decimals`` decimals (checked; trailing zeros do not count, so ``82.0`` has
  none), so no output value can equal an input value. An integer column accepts ``82.0``.

Input values outside the edges are clipped into the first or last bin; more than
`MAX_CLIPPED_SHARE` of a column's values outside is refused (wrong units or edges) unless
allowed. All problems of all columns are reported in one error. Each column may
carry a ``note`` saying where its bounds come from.

Empty values: a column with ``"empty": true`` (any type) may be empty, and an empty cell
is one more value of it, counted in a bin of its own after the others (index `Column.bins`)
and written back as an empty field (a CSV's empty field, Parquet's null). A cell is empty
when it is missing (Parquet's null) or holds nothing but spaces, the way every value is
read with its spaces trimmed (``' 15 '`` is 15). Without the key (files written before it)
a column may not be empty, and an empty cell is refused with the other problems.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DomainError, InputError

if TYPE_CHECKING:
    from .engines.base import Census, ColumnCensus, Table

CATEGORY = "category"
INTEGER = "integer"
FLOAT = "float"
KINDS = (CATEGORY, INTEGER, FLOAT)
MAX_DECIMALS = 12
#: What `Column.draw` gives for a row in the empty bin (no bin's grid reaches it).
EMPTY = np.iinfo(np.int64).min
#: A numeric column may have at most this share of its values outside its edges.
MAX_CLIPPED_SHARE = 0.01


@dataclass(frozen=True)
class Column:
    """One column of the domain: its name, kind and categories or bin edges."""

    name: str
    kind: str
    categories: tuple[str, ...] = ()
    edges: tuple[Fraction, ...] = ()
    decimals: int = 0
    note: str = ""
    #: whether a cell may be empty: then one more bin, after the others, counts empties
    empty: bool = False

    @property
    def bins(self) -> int:
        """The number of categories or numeric bins (the empty bin not included)."""
        return len(self.categories) if self.kind == CATEGORY else len(self.edges) - 1

    @property
    def size(self) -> int:
        """The attribute's size in the model: its bins, and the empty bin if it has one."""
        return self.bins + int(self.empty)

    @property
    def numeric(self) -> bool:
        return self.kind in (INTEGER, FLOAT)

    def _grid_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per bin, the first and one-past-last integer of its grid (whole numbers, or
        multiples of ``10**-decimals`` scaled to integers)."""
        scale = 10**self.decimals if self.kind == FLOAT else 1
        lows = np.array([math.ceil(e * scale) for e in self.edges[:-1]], dtype=np.int64)
        highs = np.array([math.ceil(e * scale) for e in self.edges[1:]], dtype=np.int64)
        return lows, highs

    # -- bin index -> output value -----------------------------------------------------
    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> list[str]:
        """Turn indexes into output values: the category, or a fresh draw inside the bin."""
        return self.text(self.draw(codes, rng))

    def draw(self, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Per bin index, a category index or a number drawn uniformly inside the bin (as
        an integer on the bin's grid: whole numbers, or multiples of ``10**-decimals``
        scaled to integers); `EMPTY` for the empty bin. Floats never end in a zero
        decimal. Empty rows draw nothing, so a table without them draws as before."""
        codes = np.asarray(codes, dtype=np.int64)
        if self.empty:
            blank = codes == self.bins
            if blank.any():
                drawn = np.full(codes.shape, EMPTY, dtype=np.int64)
                drawn[~blank] = self._draw(codes[~blank], rng)
                return drawn
        return self._draw(codes, rng)

    def _draw(self, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.kind == CATEGORY:
            return codes
        lows, highs = self._grid_bounds()
        low, high = lows[codes], highs[codes]
        drawn = rng.integers(low, high)  # uniform on [low, high)
        if self.kind == INTEGER:
            return drawn
        # Values whose last decimal is 0 have fewer decimals: they could be input values.
        # Draw them again (this depends on nothing but the bin), until none is left.
        while True:
            again = np.flatnonzero(drawn % 10 == 0)
            if again.size == 0:
                break
            drawn[again] = rng.integers(low[again], high[again])
        return drawn

    def text(self, drawn: np.ndarray) -> list[str]:
        """`draw`'s values as the output's text ("" for `EMPTY`)."""
        blank = np.asarray(drawn) == EMPTY
        if self.kind == CATEGORY:
            shown = [self.categories[c] for c in np.where(blank, 0, drawn)]
        elif self.kind == INTEGER:
            shown = [str(int(v)) for v in drawn]
        else:
            shown = [_fixed(int(v), self.decimals) for v in drawn]
        for i in np.flatnonzero(blank):
            shown[i] = ""
        return shown

    def number(self, drawn: np.ndarray) -> np.ndarray:
        """`draw`'s numbers as int64 (integers, `EMPTY` kept) or float64 (the nearest
        double, NaN for `EMPTY`)."""
        if self.kind == FLOAT:
            numbers = np.asarray(drawn, dtype=np.float64) / 10**self.decimals
            return np.where(np.asarray(drawn) == EMPTY, np.nan, numbers)
        return np.asarray(drawn, dtype=np.int64)

    def check_bins(self) -> None:
        """Every bin must be able to hold an output value."""
        lows, highs = self._grid_bounds()
        for i, (low, high) in enumerate(zip(lows, highs, strict=True)):
            usable = high - low
            if self.kind == FLOAT:
                usable -= (high - 1) // 10 - (low - 1) // 10  # multiples of 10 in [low, high)
            if usable <= 0:
                lo, hi = self.edges[i], self.edges[i + 1]
                raise DomainError(
                    f"column {self.name!r}: bin [{_show(lo)}, {_show(hi)}) holds no "
                    f"{'whole number' if self.kind == INTEGER else 'value with the given decimals'}"
                )


def _fixed(scaled: int, decimals: int) -> str:
    """Format ``scaled / 10**decimals`` exactly, with all its decimals."""
    sign = "-" if scaled < 0 else ""
    whole, fraction = divmod(abs(scaled), 10**decimals)
    return f"{sign}{whole}.{fraction:0{decimals}d}"


def _some(first: list[str], total: int) -> str:
    """The first few values, quoted, and how many more there are."""
    text = ", ".join(repr(v) for v in first)
    return text + (f" and {total - len(first)} more" if total > len(first) else "")


def _show(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else str(float(value))


@dataclass(frozen=True)
class TableDomain:
    """The columns of a table, in output order."""

    columns: tuple[Column, ...]
    description: str = ""
    source: str = field(default="", compare=False)

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def only(self, names: Iterable[str]) -> TableDomain:
        """The domain of these columns alone, in the domain's order."""
        keep = set(names)
        return TableDomain(tuple(c for c in self.columns if c.name in keep), self.description)

    def check(self, table: Table, *, max_clipped_share: float | None = MAX_CLIPPED_SHARE) -> Census:
        """Check a table against the domain; returns its census (row count, clipped counts).

        Every problem of every column is gathered into one `InputError`, so the owner fixes
        the domain file in one go. A numeric column with more than ``max_clipped_share`` of
        its values outside the edges is a problem too (wrong units or edges), unless
        ``max_clipped_share`` is None. The table is read through its engine: counts, and
        the first few bad values of a column that has some."""
        header = table.header
        missing = [name for name in self.names if name not in header]
        extra = [name for name in header if name not in self.names]
        problems = []
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing from the input: {missing}")
            if extra:
                parts.append(f"in the input but not in the domain file: {extra}")
            hint = delimiter_hint(header)
            if hint:
                raise InputError(
                    "the input's columns do not match the domain: " + "; ".join(parts) + "\n" + hint
                )
            problems.append("  - the columns do not match: " + "; ".join(parts))
        present = self.only(header)
        census = table.census(present)
        for column in present.columns:
            found = _problems(column, census.columns[column.name], present, table)
            counts = census.columns[column.name]
            present_values = census.rows - counts.empty  # empty cells are not clipped
            share = counts.clipped / max(1, present_values)
            if max_clipped_share is not None and share > max_clipped_share:
                lo, hi = _show(column.edges[0]), _show(column.edges[-1])
                found.append(
                    f"{counts.clipped} of {present_values} values ({share:.0%}) lie outside "
                    f"[{lo}, {hi}) ({counts.below} below, {counts.above} above) and would be "
                    "clipped into the end bins: check the units and the edges, or pass "
                    "--allow-clipping"
                )
            problems.extend(f"  - column {column.name!r}: {p}" for p in found)
        if problems:
            raise InputError(
                "the input does not fit the domain; fix these, then run again:\n"
                + "\n".join(problems)
            )
        if census.rows == 0:
            raise InputError(f"{table.label} has a header but no rows")
        return census

    def encode(
        self,
        header: list[str],
        rows: dict[str, list[str]],
        *,
        max_clipped_share: float | None = MAX_CLIPPED_SHARE,
    ) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """Check a table held in memory as text columns and return (codes, clipped counts):
        `check` and the bins, through the embedded engine."""
        from .engines import open_engine

        with open_engine() as engine:
            table = engine.from_columns(header, rows)
            census = self.check(table, max_clipped_share=max_clipped_share)
            codes = table.codes(self)
        return codes, {name: counts.clipped for name, counts in census.columns.items()}


def _problems(column: Column, counts: ColumnCensus, domain: TableDomain, table: Table) -> list[str]:
    """What is wrong with one column's values, from its census (and examples of bad ones)."""

    def some(problem: str) -> str:
        first, total = table.examples(domain, column.name, problem)
        return _some(first, total)

    problems = []
    if counts.empty and not column.empty:
        problems.append(
            f"{counts.empty} empty value(s): fill or drop them first, or allow them with "
            '"empty": true in the domain file'
        )
    if counts.unknown:
        problems.append(
            f"values not among the domain's categories {list(column.categories)}: "
            + some("unknown")
        )
    if counts.not_numbers:
        problems.append("text that is not a number: " + some("not_numbers"))
    if counts.fractional:
        problems.append("non-whole numbers in an integer column: " + some("fractional"))
    if column.kind == FLOAT and counts.places >= column.decimals:
        places = counts.places
        if places + 1 <= MAX_DECIMALS:
            advice = f'set "decimals" to at least {places + 1} in the domain file'
        else:
            advice = (
                f"round the input to at most {MAX_DECIMALS - 1} decimals (the domain "
                f"allows at most {MAX_DECIMALS} output decimals)"
            )
        problems.append(
            f"values with up to {places} decimals, but output values have "
            f"{column.decimals} (the last one non-zero), which must be more than any "
            f"input value has so that no output value can equal an input value: {advice}"
        )
    return problems


def delimiter_hint(header: list[str]) -> str:
    """A hint when a one-column header looks like another delimiter's row."""
    if len(header) != 1:
        return ""
    for delimiter, name in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
        if delimiter in header[0]:
            flag = "--delimiter tab" if delimiter == "\t" else f"--delimiter '{delimiter}'"
            return (
                f"hint: the header is one column holding {name}: the file seems to use "
                f"{name} between values; pass {flag}"
            )
    return ""


def _fraction(value: Any, where: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DomainError(f"{where}: edges must be numbers, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise DomainError(f"{where}: edges must be finite, got {value!r}")
    # str() keeps what was written (18.5 stays 18.5, not its binary neighbour)
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


def _column(spec: Any, position: int) -> Column:
    where = f"column {position + 1}"
    if not isinstance(spec, dict):
        raise DomainError(f'{where}: must be an object with "name" and "type"')
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DomainError(f'{where}: "name" must be a non-empty string')
    where = f"column {name!r}"
    kind = spec.get("type")
    if kind not in KINDS:
        raise DomainError(f'{where}: "type" must be one of {list(KINDS)}, got {kind!r}')
    if kind == CATEGORY:
        allowed = {"name", "type", "note", "empty", "categories"}
    else:
        allowed = {"name", "type", "note", "empty", "edges"}
        allowed |= {"decimals"} if kind == FLOAT else set()
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise DomainError(f"{where}: unknown key(s) {unknown} for type {kind!r}")
    note = spec.get("note", "")
    if not isinstance(note, str):
        raise DomainError(f'{where}: "note" must be a string')
    empty = spec.get("empty", False)
    if not isinstance(empty, bool):
        raise DomainError(f'{where}: "empty" must be true or false, got {empty!r}')

    if kind == CATEGORY:
        categories = spec.get("categories")
        if (
            not isinstance(categories, list)
            or len(categories) < 1
            or not all(isinstance(c, str) and c != "" for c in categories)
        ):
            raise DomainError(f'{where}: "categories" must be a list of non-empty strings')
        if len(set(categories)) != len(categories):
            raise DomainError(f'{where}: "categories" has duplicates')
        return Column(name, kind, categories=tuple(categories), note=note, empty=empty)

    edges_spec = spec.get("edges")
    if not isinstance(edges_spec, list) or len(edges_spec) < 2:
        raise DomainError(f'{where}: "edges" must be a list of at least two numbers')
    edges = tuple(_fraction(e, where) for e in edges_spec)
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise DomainError(f'{where}: "edges" must be strictly increasing')
    decimals = 0
    if kind == INTEGER:
        if any(e.denominator != 1 for e in edges):
            raise DomainError(f"{where}: an integer column's edges must be whole numbers")
    else:
        decimals = spec.get("decimals")
        if isinstance(decimals, bool) or not isinstance(decimals, int):
            raise DomainError(
                f'{where}: a float column needs "decimals" (output decimals, more than '
                "the input has)"
            )
        if not 1 <= decimals <= MAX_DECIMALS:
            raise DomainError(f'{where}: "decimals" must be between 1 and {MAX_DECIMALS}')
    column = Column(name, kind, edges=edges, decimals=decimals, note=note, empty=empty)
    column.check_bins()
    return column


def parse_domain(document: Any, source: str = "") -> TableDomain:
    """Validate a domain document (the parsed JSON); raises `DomainError` saying what is wrong."""
    if not isinstance(document, dict) or not isinstance(document.get("columns"), list):
        raise DomainError('the domain must be a JSON object with a "columns" list')
    unknown = sorted(set(document) - {"columns", "description"})
    if unknown:
        raise DomainError(f"unknown top-level key(s) {unknown}")
    description = document.get("description", "")
    if not isinstance(description, str):
        raise DomainError('"description" must be a string')
    columns = tuple(_column(spec, i) for i, spec in enumerate(document["columns"]))
    if len(columns) < 2:
        raise DomainError("the domain needs at least two columns")
    names = [column.name for column in columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DomainError(f"column names appear twice: {duplicates}")
    return TableDomain(columns, description, source)


def load_domain(path: str | os.PathLike[str]) -> TableDomain:
    """Read and validate a domain file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DomainError(f"cannot read the domain file {path}: {error.strerror}") from error
    try:
        document = json.loads(text)
    except ValueError as error:
        raise DomainError(f"the domain file {path} is not valid JSON: {error}") from error
    try:
        return parse_domain(document, str(path))
    except DomainError as error:
        raise DomainError(f"{path}: {error}") from error
