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
  ``--data`` and ``--epsilon``, the inner edges are the data's quantiles estimated with
  OpenDP's differentially private quantile (the exponential mechanism over a fixed grid
  of candidates inside the bounds): that spends ``--epsilon`` (pure DP, split evenly over
  all the quantiles) of the data's privacy budget, on top of the synthesis's own epsilon.
  The raw minimum and maximum are never used.
* a float spec may end in ``:DECIMALS`` (output decimals; default 4).
* ``--may-be-empty NAME[,NAME...]`` (repeatable): these columns may have empty cells,
  written ``"empty": true``: an empty cell is then a value of its own (a bin after the
  others). With ``--data``, their quantiles are those of the cells that hold a number.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .domain import CATEGORY, FLOAT, INTEGER, parse_domain
from .errors import DomainError, MissingExtraError, ProvisionError

DEFAULT_BINS = 6
DEFAULT_DECIMALS = 4
#: candidates per column for the DP quantiles: a fixed grid inside the public bounds
GRID = 400


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


def _grid(spec: Spec) -> list[float]:
    """The quantile candidates: a fixed grid inside the public bounds (no data used)."""
    assert spec.bounds is not None
    low, high = spec.bounds
    if spec.kind == INTEGER:
        step = max(1, math.ceil((high - low) / GRID))
        return [float(v) for v in range(int(low), int(high) + 1, step)]
    return [_tidy(v) for v in np.linspace(low, high, GRID + 1)]


def dp_quantile_edges(
    specs: list[Spec], data: Mapping[str, Sequence[Any]], epsilon: float, bins: int
) -> dict[str, list[float]]:
    """Inner edges from OpenDP private quantiles: ``epsilon`` split evenly over all."""
    try:
        import opendp.prelude as dp
    except ImportError as error:
        raise MissingExtraError(
            "drafting edges from the data needs OpenDP: pip install 'jupyterlab_manatee[provision]'"
        ) from error
    dp.enable_features("contrib")
    ranged = [s for s in specs if s.bounds is not None]
    each = epsilon / (len(ranged) * (bins - 1))
    edges: dict[str, list[float]] = {}
    for spec in ranged:
        values = []
        for text in data[spec.name]:
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if math.isnan(value):
                shown = "an empty value or text" if isinstance(text, float) else repr(text)
                raise ProvisionError(f"column {spec.name!r} of --data holds {shown}, not a number")
            values.append(value)
        candidates = _grid(spec)
        found = []
        for j in range(1, bins):

            def make(scale: float, alpha: float = j / bins, grid: list = candidates) -> Any:
                return dp.m.make_private_quantile(
                    dp.vector_domain(dp.atom_domain(T=float, nan=False)),
                    dp.symmetric_distance(),
                    dp.max_divergence(),
                    candidates=grid,
                    alpha=alpha,
                    scale=scale,
                )

            scale = dp.binary_search_param(make, d_in=1, d_out=each)
            found.append(float(make(scale)(values)))
        assert spec.bounds is not None
        inner = sorted({v for v in found if spec.bounds[0] < v < spec.bounds[1]})
        all_edges = [spec.bounds[0], *inner, spec.bounds[1]]
        if spec.kind == INTEGER:
            all_edges = sorted({int(v) for v in all_edges})
        edges[spec.name] = all_edges
    return edges


def draft(
    specs: list[Spec],
    *,
    bins: int = DEFAULT_BINS,
    data: Mapping[str, Sequence[Any]] | None = None,
    epsilon: float | None = None,
) -> dict[str, Any]:
    """The domain document for ``specs``; checked as `parse_domain` checks a file."""
    names = [s.name for s in specs]
    if data is not None:
        missing = [n for n in names if n not in data]
        if missing:
            raise ProvisionError(f"columns not in --data: {missing}")
    estimated: dict[str, list[float]] = {}
    if data is not None and epsilon is not None and any(s.bounds for s in specs):
        estimated = dp_quantile_edges(specs, data, epsilon, bins)
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
            column["edges"] = estimated[spec.name]
            column["note"] = (
                f"bounds {spec.bounds} given on the command line; inner edges are "
                f"differentially private quantiles of the data (OpenDP, part of epsilon "
                f"{epsilon:g})"
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
    return document


class _Columns(Mapping[str, Sequence[Any]]):
    """A table's columns, each read through its engine (as numbers) when asked for: only
    the columns whose quantiles are estimated are read."""

    def __init__(self, header: list[str], read: Callable[[str], np.ndarray]) -> None:
        self.header, self.read = header, read

    def __getitem__(self, name: str) -> Sequence[Any]:
        if name not in self.header:
            raise KeyError(name)
        return self.read(name).tolist()

    def __iter__(self) -> Iterator[str]:
        return iter(self.header)

    def __len__(self) -> int:
        return len(self.header)


def _present(values: np.ndarray, may_be_empty: bool) -> np.ndarray:
    """The numbers of a column that may be empty, without its empty cells (NaN)."""
    return values[~np.isnan(values)] if may_be_empty else values


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
        document = draft(specs, bins=args.bins)
    else:
        from .engines import Source, open_engine

        delimiter = "\t" if args.delimiter == "tab" else args.delimiter
        with open_engine() as engine:
            table = engine.open(Source(args.data, delimiter=delimiter))

            def numbers(name: str) -> np.ndarray:
                return _present(table.numbers(name), name in empty)

            data = _Columns(table.header, numbers)
            document = draft(specs, bins=args.bins, data=data, epsilon=args.epsilon)
    text = json.dumps(document, indent=2) + "\n"
    write_whole(args.output, lambda h: h.write(text), overwrite=args.overwrite)
    print(f"wrote {args.output}: {len(specs)} columns")
    if args.data is not None and any(s.bounds for s in specs):
        print(
            f"the DP quantiles spent epsilon {args.epsilon:g} of the data's budget: the total "
            f"is this plus the synthesis's --epsilon (e.g. {args.epsilon:g} + 3 = "
            f"{args.epsilon + 3:g})"
        )
    print("read the notes, fix what public facts say better, then run manatee-provision")
    return 0
