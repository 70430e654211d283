"""``manatee-provision domain``: draft a domain file from public facts given on the command line.

    manatee-provision domain --output diabetes.domain.json \\
        --integer age=18,30,40,50,60,70,80 --category smoker=no,yes \\
        --float bmi=15,18.5,25,30,35,50:2 --float glucose=40..200 --bins 6 \\
        [--data real.csv --epsilon 0.3]

Each column is ``NAME=SPEC`` in the order given:

* ``--category NAME=A,B,C``: the categories (a form's choices, a code list).
* ``--integer``/``--float NAME=E1,E2,...``: bin edges from public cut-offs.
* ``--integer``/``--float NAME=LOW..HIGH``: public bounds only (the physically or clinically
  possible range). Without ``--data`` the range is cut into ``--bins`` equal bins. With
  ``--data`` and ``--epsilon``, the inner edges are the data's DP quantiles: the engine
  counts the rows in 1024 equal cells between the bounds, and OpenDP's noisy max picks
  cell boundaries by rank error, the middle quantile first, then each side's (so 6 bins
  take 3 rounds). That spends ``--epsilon`` (pure DP; split evenly over the columns, then
  over the rounds) of the data's privacy budget, on top of the synthesis's own epsilon.
  The raw minimum and maximum are never used. Warnings say when the noise is too large
  for the rows, when quantiles were merged and when one bin holds almost every row.
* a float spec may end in ``:DECIMALS`` (output decimals; default 4).
* ``--may-be-empty NAME[,NAME...]`` (repeatable): these columns may have empty cells,
  written ``"empty": true``: an empty cell is then a value of its own (a bin after the
  others). With ``--data``, their quantiles are those of the cells that hold a number.
* ``--engine spark [--spark-master URL]``: Spark counts the cells instead of DuckDB, with
  the same statements, so the counts (and so the quantiles' chances) are the same.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .domain import CATEGORY, FLOAT, INTEGER, parse_domain
from .engines import ENGINE_HELP, ENGINES, SPARK_MASTER_HELP, Table, sql
from .errors import DomainError, MissingExtraError, ProvisionError
from .plan import _round_up

DEFAULT_BINS = 6
DEFAULT_DECIMALS = 4
#: cells per bounded column for the DP quantiles: equal cells inside the public bounds,
#: counted by the engine; their boundaries are the candidates
CELLS = 1024
#: warn when a quantile's expected rank error exceeds this share of the rows a bin holds
ERROR_SHARE = 0.5
#: warn when one bin holds more than this share of the rows
MAX_BIN_SHARE = 0.9


@dataclass
class Spec:
    """One column as given on the command line."""

    name: str
    kind: str
    categories: list[str] | None = None
    edges: list[float] | None = None
    bounds: tuple[float, float] | None = None
    decimals: int = DEFAULT_DECIMALS
    #: whether the column may be empty (``--may-be-empty``)
    empty: bool = False


def _number(text: str, kind: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DomainError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DomainError(f"{where}: {text!r} is not a finite number")
    if kind == INTEGER and value != int(value):
        raise DomainError(f"{where}: an integer column's edges must be whole numbers")
    return int(value) if kind == INTEGER else value


def parse_spec(kind: str, text: str) -> Spec:
    """``NAME=...`` of one ``--category``/``--integer``/``--float`` flag."""
    name, equals, rest = text.partition("=")
    name = name.strip()
    where = f"--{kind} {text}"
    if not equals or not name or not rest:
        raise DomainError(f"{where}: expected NAME=VALUES")
    if kind == CATEGORY:
        return Spec(name, kind, categories=[c.strip() for c in rest.split(",")])
    decimals = DEFAULT_DECIMALS
    if kind == FLOAT and ":" in rest:
        rest, _, places = rest.rpartition(":")
        if not places.isdigit():
            raise DomainError(f"{where}: the decimals after ':' must be a whole number")
        decimals = int(places)
    if ".." in rest:
        low, _, high = rest.partition("..")
        bounds = (_number(low, kind, where), _number(high, kind, where))
        if bounds[1] <= bounds[0]:
            raise DomainError(f"{where}: LOW..HIGH needs LOW below HIGH")
        return Spec(name, kind, bounds=bounds, decimals=decimals)
    edges = [_number(e, kind, where) for e in rest.split(",")]
    return Spec(name, kind, edges=edges, decimals=decimals)


def _equal_edges(spec: Spec, bins: int) -> list[float]:
    assert spec.bounds is not None
    low, high = spec.bounds
    edges = np.linspace(low, high, bins + 1)
    if spec.kind == INTEGER:
        return sorted({round(float(e)) for e in edges})
    return [_tidy(e) for e in edges]


def _tidy(value: float) -> float:
    return float(f"{value:.6g}")


def _cells(spec: Spec) -> sql.Cells:
    """Equal cells between the public bounds (no data used): the quantile candidates are
    their boundaries. An integer column's cells are whole numbers wide."""
    assert spec.bounds is not None
    low, high = spec.bounds
    if spec.kind == INTEGER:
        width = max(1, math.ceil((high - low) / CELLS))
        return sql.Cells(spec.name, low, width, math.ceil((high - low) / width))
    return sql.Cells(spec.name, low, (high - low) / CELLS, CELLS)


def _boundary(spec: Spec, cells: sql.Cells, k: int) -> float:
    """Boundary ``k`` of the cells, in the fewest significant digits (six at least) that
    keep it within a hundredth of a cell: six alone would round every boundary of a range
    narrow beside its size (1000000..1000001) onto a bound."""
    value = cells.low + k * cells.width
    if spec.kind == INTEGER:
        return round(value)
    digits = 6
    while abs(float(f"{value:.{digits}g}") - value) > cells.width / 100:
        digits += 1
    return float(f"{value:.{digits}g}")


def rounds(bins: int) -> int:
    """How many rounds the quantiles of ``bins`` bins take: the middle one first, then
    the middle ones of each side, ... (each round's picks touch disjoint rows)."""
    return math.ceil(math.log2(bins))


def _scores(counts: np.ndarray, a: int, b: int) -> np.ndarray:
    """The score of each inner boundary of ``counts`` as the ``a/b``-quantile: ``|(b-a)
    below - a above|``, ``b`` times its rank error; one row more or less moves it by at
    most ``max(a, b-a)``."""
    below = np.cumsum(counts)[:-1]
    return np.abs((b - a) * below - a * (int(counts.sum()) - below))


def _noisy_min(scores: np.ndarray, sensitivity: int, epsilon: float) -> int:
    """The index of a low score, chosen by OpenDP's noisy max (pure DP, ``epsilon``)."""
    import opendp.prelude as dp

    space = dp.vector_domain(dp.atom_domain(T="i64")), dp.linf_distance(T="i64", monotonic=False)

    def make(scale: float) -> Any:
        return dp.m.make_noisy_max(*space, dp.max_divergence(), scale=scale, negate=True)

    measurement = make(dp.binary_search_param(make, d_in=sensitivity, d_out=epsilon))
    assert measurement.map(sensitivity) <= epsilon
    return int(measurement([int(v) for v in scores]))


def quantile_cells(counts: np.ndarray, bins: int, epsilon: float) -> list[int]:
    """The boundaries (cell indexes, 1 to cells - 1) of the ``j/bins`` quantiles, ``epsilon``
    for the column: the middle quantile on all cells, then each side's middle one on the
    cells of that side, ... (Kaplan, Schnapp, Stemmer 2022), ``epsilon / rounds`` each.
    A side without an inner boundary repeats its lower one (a merged edge)."""
    each = epsilon / rounds(bins)
    found: dict[int, int] = {}

    def pick(lo: int, hi: int, wanted: list[int], j_lo: int, j_hi: int) -> None:
        if not wanted:
            return
        j = wanted[len(wanted) // 2]
        if hi - lo < 2:
            k = lo
        else:
            a, b = j - j_lo, j_hi - j_lo
            k = lo + 1 + _noisy_min(_scores(counts[lo:hi], a, b), max(a, b - a), each)
        found[j] = k
        pick(lo, k, wanted[: len(wanted) // 2], j_lo, j)
        pick(k, hi, wanted[len(wanted) // 2 + 1 :], j, j_hi)

    pick(0, len(counts), list(range(1, bins)), 0, bins)
    return [found[j] for j in range(1, bins)]


def expected_rank_error(counts: np.ndarray, bins: int, epsilon: float) -> float:
    """The largest expected rank error, in rows, that the noise adds to a ``j/bins``
    quantile (beyond the best boundary's), each as if picked on all cells with ``epsilon /
    rounds`` by the exponential mechanism (OpenDP's noisy max does no worse). Uses the
    exact counts: not private, for the warning only."""
    if len(counts) < 2:  # no inner boundary (bounds one whole number apart): no pick
        return 0.0
    each = epsilon / rounds(bins)
    worst = 0.0
    for j in range(1, bins):
        errors = _scores(counts, j, bins).astype(np.float64) / bins
        weights = np.exp(-each * bins * (errors - errors.min()) / (2 * max(j, bins - j)))
        worst = max(worst, float(weights @ errors / weights.sum()) - float(errors.min()))
    return worst


@dataclass
class Quantiles:
    """What the DP quantiles of one column spent and found (see `draft`)."""

    epsilon: float
    rounds: int
    per_quantile: float
    edges: list[float]
    warnings: list[str]


def _noise_warning(
    name: str, counts: np.ndarray, bins: int, epsilon: float, total: float
) -> str | None:
    """The warning when the expected rank error exceeds half the rows a bin should hold."""
    rows = int(counts.sum())
    if rows == 0:
        return None

    def fits(b: int, e: float) -> bool:
        return expected_rank_error(counts, b, e) <= ERROR_SHARE * rows / b

    if fits(bins, epsilon):
        return None
    error = expected_rank_error(counts, bins, epsilon)
    advice = []
    factor = next((f for f in _FACTORS if fits(bins, epsilon * f)), None)
    if factor is not None:
        advice.append(f"--epsilon {_round_up(total * factor):g} or more")
    fewer = next((b for b in range(bins - 1, 1, -1) if fits(b, epsilon)), None)
    if fewer is not None:
        advice.append(f"--bins {fewer}")
    advice.append("public cut-offs (NAME=E1,E2,...)")
    return (
        f"warning (not private): column {name!r}: epsilon {epsilon / rounds(bins):.3g} per "
        f"quantile adds an expected rank error of {error:.0f} rows, over half the "
        f"{rows / bins:.0f} rows a bin should hold ({rows} rows, {bins} bins): the edges are "
        f"close to random; use {', or '.join(advice)}"
    )


#: the factors tried on epsilon for the warning's suggestion
_FACTORS = [f * 10**p for p in range(5) for f in (2, 5, 10)]


def dp_quantile_edges(
    specs: list[Spec], table: Table, epsilon: float, bins: int
) -> dict[str, Quantiles]:
    """Inner edges from DP quantiles over each bounded column's counts in equal cells
    (one pass of the engine): ``epsilon`` split evenly over the columns, each column's
    share over its `rounds`; the values themselves are never read."""
    try:
        import opendp.prelude as dp
    except ImportError as error:
        raise MissingExtraError(
            "drafting edges from the data needs OpenDP: pip install 'jupyterlab_manatee[provision]'"
        ) from error
    dp.enable_features("contrib")
    ranged = [s for s in specs if s.bounds is not None]
    cells = {s.name: _cells(s) for s in ranged}
    histograms = table.histograms(list(cells.values()))
    share = epsilon / len(ranged)
    result: dict[str, Quantiles] = {}
    for spec in ranged:
        histogram = histograms[spec.name]
        # a column that may be empty: its quantiles are those of the cells holding a number
        empty = 0 if spec.empty else histogram.empty
        if empty or histogram.not_numbers:
            raise ProvisionError(
                f"column {spec.name!r} of --data holds {empty} empty value(s) and "
                f"{histogram.not_numbers} text(s) that are not numbers: only numbers can be "
                "binned"
            )
        assert spec.bounds is not None
        picked = [
            _boundary(spec, cells[spec.name], k)
            for k in quantile_cells(histogram.counts, bins, share)
        ]
        inner = sorted({v for v in picked if spec.bounds[0] < v < spec.bounds[1]})
        edges = [spec.bounds[0], *inner, spec.bounds[1]]
        warnings = []
        noise = _noise_warning(spec.name, histogram.counts, bins, share, epsilon)
        if noise:
            warnings.append(noise)
        if len(edges) - 1 < bins:
            merged = bins - (len(edges) - 1)
            advice = (  # --bins 1 would be refused
                f"a larger --epsilon, or --bins {len(edges) - 1}"
                if len(edges) > 2
                else "wider bounds or public cut-offs (NAME=E1,E2,...)"
            )
            warnings.append(
                f"warning: column {spec.name!r}: {merged} of its {bins - 1} DP quantiles fell "
                f"on an edge already taken and were merged: {len(edges) - 1} bins remain of "
                f"the {bins} asked for; use {advice}"
            )
        crowded = _crowded_bin(spec, cells[spec.name], histogram.counts, edges)
        if crowded:
            warnings.append(crowded)
        result[spec.name] = Quantiles(share, rounds(bins), share / rounds(bins), edges, warnings)
    return result


def _crowded_bin(
    spec: Spec, cells: sql.Cells, counts: np.ndarray, edges: list[float]
) -> str | None:
    """The warning when one bin holds more than `MAX_BIN_SHARE` of the rows."""
    rows = int(counts.sum())
    if rows == 0 or len(edges) < 3:
        return None
    starts = np.array([cells.low + k * cells.width for k in range(cells.count)])
    inner = np.array(edges[1:-1], dtype=np.float64)
    # each cell's bin: the count of inner edges at or below the cell's start
    held = np.bincount(
        np.searchsorted(inner, starts + cells.width / 2, side="right"),
        weights=counts,
        minlength=len(edges) - 1,
    )
    top = int(np.argmax(held))
    if held[top] <= MAX_BIN_SHARE * rows:
        return None
    return (
        f"warning (not private): column {spec.name!r}: the bin [{edges[top]:g}, "
        f"{edges[top + 1]:g}) holds {held[top] / rows:.0%} of the {rows} rows, the other "
        f"{len(edges) - 2} bins almost none; use a larger --epsilon, or public cut-offs "
        "where the values crowd"
    )


@dataclass
class Drafted:
    """A drafted domain document, the warnings about it and the DP quantiles' spending."""

    document: dict[str, Any]
    warnings: list[str]
    quantiles: dict[str, Quantiles]


def draft(
    specs: list[Spec],
    *,
    bins: int = DEFAULT_BINS,
    table: Table | None = None,
    epsilon: float | None = None,
) -> Drafted:
    """The domain document for ``specs``; checked as `parse_domain` checks a file."""
    names = [s.name for s in specs]
    if table is not None:
        missing = [n for n in names if n not in table.header]
        if missing:
            raise ProvisionError(f"columns not in --data: {missing}")
    estimated: dict[str, Quantiles] = {}
    if table is not None and epsilon is not None and any(s.bounds for s in specs):
        estimated = dp_quantile_edges(specs, table, epsilon, bins)
    columns = []
    for spec in specs:
        column: dict[str, Any] = {"name": spec.name, "type": spec.kind}
        if spec.kind == CATEGORY:
            column["categories"] = spec.categories
            column["note"] = "categories given on the command line (public facts)"
        elif spec.edges is not None:
            column["edges"] = spec.edges
            column["note"] = "edges given on the command line (public cut-offs)"
        elif spec.name in estimated:
            spent = estimated[spec.name]
            column["edges"] = spent.edges
            column["note"] = (
                f"bounds {spec.bounds} given on the command line; inner edges are "
                f"differentially private quantiles of the data (OpenDP's noisy max over "
                f"{_cells(spec).count} equal cells): epsilon {spent.epsilon:.4g} of "
                f"{epsilon:g} for this column, {spent.per_quantile:.4g} per quantile in each "
                f"of {spent.rounds} rounds"
            )
        else:
            column["edges"] = _equal_edges(spec, bins)
            column["note"] = f"bounds {spec.bounds} given on the command line, equal bins"
        if spec.kind == FLOAT:
            column["decimals"] = spec.decimals
        if spec.empty:
            column["empty"] = True
        columns.append(column)
    description = "Drafted by manatee-provision domain from public facts."
    if estimated:
        description += (
            f" Some edges are DP quantiles of the data: they spent epsilon {epsilon:g} (pure "
            "DP) of the data's privacy budget; the synthesis adds its own epsilon to it."
        )
    document = {"description": description, "columns": columns}
    parse_domain(json.loads(json.dumps(document)))  # the same checks as for a file
    warnings = [w for q in estimated.values() for w in q.warnings]
    return Drafted(document, warnings, estimated)


class _Column(argparse.Action):
    """Keep every column flag, whatever its kind, in the order given."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        specs = getattr(namespace, self.dest) or []
        specs.append((self.metavar, values))
        setattr(namespace, self.dest, specs)


def parser() -> argparse.ArgumentParser:
    """The arguments of ``manatee-provision domain``."""
    p = argparse.ArgumentParser(
        prog="manatee-provision domain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    helps = {
        CATEGORY: "a category column: NAME=A,B,C",
        INTEGER: "an integer column: NAME=E1,E2,... (edges) or NAME=LOW..HIGH (bounds)",
        FLOAT: "a decimal column, alike, with an optional :DECIMALS at the end",
    }
    for kind in (CATEGORY, INTEGER, FLOAT):
        p.add_argument(
            f"--{kind}", dest="columns", action=_Column, metavar=kind, default=[], help=helps[kind]
        )
    p.add_argument(
        "--may-be-empty",
        metavar="NAME[,NAME]",
        action="append",
        default=[],
        help="columns whose cells may be empty: an empty cell is then a value of its own",
    )
    p.add_argument("--bins", type=int, default=DEFAULT_BINS, help="bins for LOW..HIGH columns")
    p.add_argument(
        "--data", default=None, help="the real table (CSV, .parquet, gs://), for DP quantiles"
    )
    p.add_argument("--delimiter", default=",", help="the data's delimiter (default ',')")
    p.add_argument("--epsilon", type=float, default=None, help="budget for the DP quantiles")
    p.add_argument("--engine", choices=ENGINES, default="duckdb", help=ENGINE_HELP)
    p.add_argument("--spark-master", default="local[*]", help=SPARK_MASTER_HELP)
    p.add_argument("--output", type=Path, required=True, help="where to write the domain file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    return p


def main(argv: list[str]) -> int:
    """Run ``manatee-provision domain``; errors propagate to the caller's handler."""
    from .files import check_writable, write_whole

    args = parser().parse_args(argv)
    if not args.columns:
        raise ProvisionError("give the columns: --category, --integer or --float NAME=...")
    if args.bins < 2:
        raise ProvisionError("--bins must be at least 2")
    if (args.data is None) != (args.epsilon is None):
        raise ProvisionError("--data and --epsilon go together: give both or neither")
    if args.epsilon is not None and not (math.isfinite(args.epsilon) and args.epsilon > 0):
        raise ProvisionError("--epsilon must be a positive number")
    check_writable(args.output, overwrite=args.overwrite)
    specs = [parse_spec(kind, text) for kind, text in args.columns]
    empty = {n.strip() for names in args.may_be_empty for n in names.split(",") if n.strip()}
    unknown = sorted(empty - {s.name for s in specs})
    if unknown:
        raise ProvisionError(f"--may-be-empty names no column given: {unknown}")
    for spec in specs:
        spec.empty = spec.name in empty
    if args.data is None:
        drafted = draft(specs, bins=args.bins)
    else:
        from .engines import Source, open_engine

        delimiter = "\t" if args.delimiter == "tab" else args.delimiter
        options = {"master": args.spark_master} if args.engine == "spark" else {}
        with open_engine(args.engine, **options) as engine:
            table = engine.open(Source(args.data, delimiter=delimiter))
            drafted = draft(specs, bins=args.bins, table=table, epsilon=args.epsilon)
    text = json.dumps(drafted.document, indent=2) + "\n"
    write_whole(args.output, lambda h: h.write(text), overwrite=args.overwrite)
    print(f"wrote {args.output}: {len(specs)} columns")
    if args.data is not None and any(s.bounds for s in specs):
        print(
            f"the DP quantiles spent epsilon {args.epsilon:g} of the data's budget: the total "
            f"is this plus the synthesis's --epsilon (e.g. {args.epsilon:g} + 3 = "
            f"{args.epsilon + 3:g})"
        )
    for line in drafted.warnings:
        print(line)
    print("read the notes, fix what public facts say better, then run manatee-provision")
    return 0
