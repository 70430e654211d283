"""MST: differentially private synthetic data from 1-way and 2-way marginals.

The mechanism of McKenna, Miklau and Sheldon (2021, "Winning the NIST Contest: A scalable
and general approach to differentially private synthetic data"), written on the ``mbi``
library (private-pgm) for the graphical-model estimation and the sampling. The budget
rho (zCDP) is split in three equal parts:

1. **Measure every 1-way marginal** with Gaussian noise. Attribute values whose noisy count
   is below 3 sigma are merged into one value (the paper's domain compression; this uses
   only the noisy counts, so it costs nothing).
2. **Select 2-way marginals**: a model is estimated from the 1-way measurements; each pair
   of attributes is weighted by the L1 distance between its marginal in the data and in
   that model; a maximum spanning tree is grown with the exponential mechanism, one edge
   per round among the edges that join two components (the L1 distance changes by at
   most 1 when one record is added or removed).
3. **Measure the selected 2-way marginals** with Gaussian noise.

The model is then estimated from all the measurements (mirror descent) and sampled; merged
values are split back where the 1-way measurements put their mass (`split_weights`, not
uniformly: a uniform split invents values in bins no record is in), and each bin becomes a
value drawn inside it (`domain.Column.draw`; the empty bin of a column that may be empty
becomes an empty value). Neighbouring tables differ by one added or removed record.

`fit` sees the table only as those marginals' exact counts (an engine computes them where
the data is, see `engines`); `Fit.pieces` samples the rows a piece at a time.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import privacy
from .domain import MAX_CLIPPED_SHARE, TableDomain
from .engines.base import Marginals
from .errors import MissingExtraError
from .quality import distances

#: Values with a noisy count below this many sigmas are merged (the paper's choice).
COMPRESS_SIGMAS = 3.0
DEFAULT_ITERS = 1000
#: Synthetic rows sampled and written at a time: bounds the memory of a large output.
PIECE_ROWS = 100_000


def _import_mbi() -> Any:
    """Import mbi with JAX in 64-bit mode (set before mbi is imported, as mbi asks)."""
    try:
        import jax
    except ImportError as error:
        raise MissingExtraError(
            "manatee-provision needs the 'provision' extra: "
            "pip install 'jupyterlab_manatee[provision]' (jax is missing)"
        ) from error
    jax.config.update("jax_enable_x64", True)
    # mbi compiles many small programs; a persistent cache only fills the disk.
    jax.config.update("jax_enable_compilation_cache", False)
    try:
        import mbi
        from mbi import estimation
    except ImportError as error:
        raise MissingExtraError(
            "manatee-provision needs the 'provision' extra: "
            "pip install 'jupyterlab_manatee[provision]' (mbi is missing)"
        ) from error
    del estimation
    return mbi


def _seeded_numpy_state(seed: int) -> dict[str, Any]:
    """The state numpy's global generator has after ``np.random.seed(seed)``."""
    return np.random.RandomState(seed).get_state(legacy=False)  # type: ignore[return-value]


@contextlib.contextmanager
def _numpy_state(state: dict[str, Any]) -> Iterator[None]:
    """mbi samples with numpy's global generator: give it ``state`` for the block, keep
    where it got to in ``state`` (the next piece goes on from there), put back the
    caller's."""
    saved = np.random.get_state()
    np.random.set_state(state)  # type: ignore[arg-type]
    try:
        yield
    finally:
        state.update(np.random.get_state(legacy=False))  # type: ignore[arg-type]
        np.random.set_state(saved)


@dataclass
class Synthesis:
    """The synthetic table (values as text, in the domain's column order) and its report."""

    domain: TableDomain
    columns: dict[str, list[str]]
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values())))

    def records(self) -> Iterator[list[str]]:
        """The rows, each a list of values in column order."""
        names = self.domain.names
        return (list(row) for row in zip(*(self.columns[n] for n in names), strict=True))

    def frame(self) -> Any:
        """The table as a pandas DataFrame, numbers parsed; an empty value is missing
        (an integer column that may be empty is pandas' nullable ``Int64``)."""
        import pandas

        data: dict[str, Any] = {}
        for column in self.domain.columns:
            values = self.columns[column.name]
            if column.kind == "integer" and column.empty:
                data[column.name] = pandas.array(
                    [int(v) if v else None for v in values], dtype="Int64"
                )
            elif column.kind == "integer":
                data[column.name] = np.array([int(v) for v in values], dtype=np.int64)
            elif column.kind == "float":
                data[column.name] = np.array(
                    [float(v) if v else np.nan for v in values], dtype=np.float64
                )
            else:
                data[column.name] = [v if v else None for v in values]
        return pandas.DataFrame(data, columns=self.domain.names)


def _select_tree(
    weights: dict[tuple[str, str], float],
    attributes: list[str],
    epsilon: float,
    rng: np.random.Generator,
) -> list[tuple[str, str]]:
    """A spanning tree grown with the exponential mechanism (sensitivity 1), edge by edge."""
    parent = {a: a for a in attributes}

    def root(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    chosen: list[tuple[str, str]] = []
    for _ in range(len(attributes) - 1):
        candidates = [e for e in weights if root(e[0]) != root(e[1])]
        scores = np.array([weights[e] for e in candidates], dtype=np.float64)
        logits = epsilon * scores / 2.0
        logits -= logits.max()
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum()
        edge = candidates[int(rng.choice(len(candidates), p=probabilities))]
        chosen.append(edge)
        parent[root(edge[0])] = root(edge[1])
    return chosen


def split_weights(noisy: np.ndarray, total: float) -> np.ndarray:
    """How to share a merged value's rows among its bins: the non-negative counts closest
    (least squares) to the bins' noisy counts that add up to the model's ``total``.

    That is the Euclidean projection of the noisy counts onto the scaled simplex: each
    weight is ``max(noisy - tau, 0)`` with the one ``tau`` that makes them sum to
    ``total``. A bin whose noisy count is well below the others (an empty tail bin that
    drew positive noise) gets nothing, where a uniform split would give it an equal share.
    Returns probabilities; it uses the noisy measurements only, so it costs no privacy."""
    noisy = np.asarray(noisy, dtype=np.float64)
    if total <= 0 or not np.isfinite(total):
        return np.full(noisy.size, 1.0 / noisy.size)
    ordered = np.sort(noisy)[::-1]
    running = np.cumsum(ordered) - total
    k = np.arange(1, noisy.size + 1)
    last = int(np.flatnonzero(ordered - running / k > 0)[-1])
    tau = running[last] / (last + 1)
    weights = np.maximum(noisy - tau, 0.0)
    return weights / weights.sum()


def _decompress(
    codes: np.ndarray,
    to: np.ndarray,
    noisy: np.ndarray,
    estimate: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Map compressed codes back to the original bins; the merged group's rows are shared
    among its bins by `split_weights`."""
    group = int(to.max())
    kept = np.flatnonzero(to != group)
    merged = np.flatnonzero(to == group)
    result = np.empty_like(codes)
    inside = codes == group
    result[~inside] = kept[codes[~inside]]
    weights = split_weights(noisy[merged], estimate)
    result[inside] = merged[rng.choice(merged.size, size=int(inside.sum()), p=weights)]
    return result


def _compressed(
    counts: np.ndarray, clique: tuple[str, ...], mapping: dict[str, np.ndarray]
) -> np.ndarray:
    """A marginal over the compressed domain: the counts of merged bins added up."""
    result = counts
    for axis, name in enumerate(clique):
        if name in mapping:
            to = mapping[name]
            shape = list(result.shape)
            shape[axis] = int(to.max()) + 1
            merged = np.zeros(shape, dtype=result.dtype)
            np.add.at(merged, (slice(None),) * axis + (to,), result)
            result = merged
    return result


@dataclass
class Fit:
    """An MST model estimated from noisy counts, ready to sample, and what it spent."""

    domain: TableDomain
    model: Any
    total: float
    mapping: dict[str, np.ndarray]
    one_way: list[Any]
    report: dict[str, Any]
    streams: dict[str, np.random.Generator]
    numpy_seed: int
    #: the model's attribute for each column where it is not the column's name
    keys: dict[str, Any] = field(default_factory=dict)

    @property
    def estimated_rows(self) -> int:
        """The model's noisy estimate of the table's size (the true size is not released)."""
        return max(1, round(float(self.total)))

    def pieces(self, rows: int, piece_rows: int = PIECE_ROWS) -> Iterator[Piece]:
        """``rows`` synthetic rows in pieces of at most ``piece_rows``: memory does not grow
        with ``rows``, and the same fit gives the same pieces.

        mbi samples a piece at a time (randomized rounding of the model's marginals to the
        piece's size, as it does for a whole table); merged values are split back by
        `split_weights`; each bin becomes a value drawn inside it (`Column.draw`)."""
        numpy_state = _seeded_numpy_state(self.numpy_seed)
        # copies: sampling the same fit again gives the same rows again
        split, draw = (copy.deepcopy(self.streams[name]) for name in ("split", "draw"))
        names = self.domain.names
        estimates = {
            name: float(
                np.asarray(self.model.project((self.keys.get(name, name),)).datavector())[
                    int(to.max())
                ]
            )
            for name, to in self.mapping.items()
        }
        for start in range(0, rows, piece_rows):
            count = min(piece_rows, rows - start)
            with _numpy_state(numpy_state):
                synthetic = self.model.synthetic_data(rows=count)
            sampled = {
                name: np.asarray(synthetic.data[self.keys.get(name, name)], dtype=np.int64)
                for name in names
            }
            for name, measurement in zip(names, self.one_way, strict=True):
                if name in self.mapping:
                    noisy = np.asarray(measurement.noisy_measurement, dtype=np.float64)
                    sampled[name] = _decompress(
                        sampled[name], self.mapping[name], noisy, estimates[name], split
                    )
            yield Piece(
                self.domain,
                sampled,
                {c.name: c.draw(sampled[c.name], draw) for c in self.domain.columns},
            )


@dataclass
class Piece:
    """Some synthetic rows: each column's bins and the values drawn inside them."""

    domain: TableDomain
    bins: dict[str, np.ndarray]
    drawn: dict[str, np.ndarray]

    @property
    def rows(self) -> int:
        return len(next(iter(self.bins.values())))

    def text(self) -> dict[str, list[str]]:
        """The values as the output's text, by column."""
        return {c.name: c.text(self.drawn[c.name]) for c in self.domain.columns}


def fit(
    marginals: Marginals,
    domain: TableDomain,
    *,
    epsilon: float,
    delta: float,
    seed: int,
    iters: int = DEFAULT_ITERS,
) -> Fit:
    """Run MST's measurements and estimation on a table's exact counts.

    ``marginals`` holds every 1-way and 2-way marginal (see `engines.sql.one_and_two_way`)
    as integer arrays indexed by bin in the domain's order: the noise is added in that
    order, so the same counts, domain and seed give the same model, whatever order the
    engine counted in. Nothing else of the table is read."""
    if iters < 1:
        raise ValueError("iters must be at least 1")
    rho = privacy.rho_for(epsilon, delta)
    mbi = _import_mbi()
    from mbi import LinearMeasurement, estimation

    names = domain.names
    d = len(names)
    one_way_rho = selection_rho = two_way_rho = rho / 3
    sigma1 = privacy.gaussian_sigma(one_way_rho, d)
    select_epsilon = privacy.exponential_epsilon(selection_rho, d - 1)
    sigma2 = privacy.gaussian_sigma(two_way_rho, d - 1)
    noise1, select, noise2, sample, split, draw = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)
    )
    full_domain = mbi.Domain(names, [c.size for c in domain.columns])

    # 1. every 1-way marginal, with Gaussian noise
    one_way = []
    for name in names:
        counts = np.asarray(marginals[(name,)], dtype=np.float64).ravel()
        noisy = counts + noise1.normal(0.0, sigma1, counts.size)
        one_way.append(LinearMeasurement(noisy, (name,), stddev=sigma1))
    total = estimation.minimum_variance_unbiased_total(one_way)

    # domain compression: merge the values whose noisy count is small
    mapping: dict[str, np.ndarray] = {}
    merged: dict[str, int] = {}
    for name, measurement in zip(names, one_way, strict=True):
        small = np.asarray(measurement.noisy_measurement) < COMPRESS_SIGMAS * sigma1
        if small.sum() < 2:
            continue
        kept = int((~small).sum())
        to = np.empty(small.size, dtype=np.int64)
        to[~small] = np.arange(kept)
        to[small] = kept
        mapping[name] = to
        merged[name] = int(small.sum())
    sizes = [
        int(mapping[n].max()) + 1 if n in mapping else c.size
        for n, c in zip(names, domain.columns, strict=True)
    ]
    model_domain = mbi.Domain(names, sizes)
    measurements = [m.compress(mapping, full_domain) for m in one_way]

    estimator = estimation.MirrorDescent()
    model = estimator.estimate(model_domain, measurements, known_total=total, iters=iters)

    # 2. choose the 2-way marginals: a spanning tree, with the exponential mechanism
    pair_counts = {
        pair: np.asarray(_compressed(marginals[pair], pair, mapping), dtype=np.float64).ravel()
        for pair in itertools.combinations(names, 2)
    }
    weights = {}
    for pair, in_data in pair_counts.items():
        in_model = np.asarray(model.project(pair).datavector(), dtype=np.float64)
        weights[pair] = float(np.abs(in_data - in_model).sum())
    tree = _select_tree(weights, names, select_epsilon, select)

    # 3. measure them, with Gaussian noise
    for pair in tree:
        counts = pair_counts[pair]
        noisy = counts + noise2.normal(0.0, sigma2, counts.size)
        measurements.append(LinearMeasurement(noisy, pair, stddev=sigma2))
    model = estimator.estimate(
        model_domain, measurements, known_total=total, iters=iters, warm_start=model
    )

    spent = one_way_rho + selection_rho + two_way_rho
    report = {
        "mechanism": "MST (McKenna, Miklau, Sheldon 2021) on mbi " + _mbi_version(),
        "privacy": {
            "epsilon": epsilon,
            "delta": delta,
            "rho": rho,
            "rho_spent": spent,
            "epsilon_spent": privacy.epsilon_for(spent, delta),
            "neighbouring": "tables that differ by one added or removed record",
            "one_way": {"rho": one_way_rho, "sigma": sigma1, "marginals": d},
            "selection": {
                "rho": selection_rho,
                "epsilon_per_round": select_epsilon,
                "rounds": d - 1,
            },
            "two_way": {"rho": two_way_rho, "sigma": sigma2, "marginals": d - 1},
        },
        "selected_marginals": [list(pair) for pair in tree],
        "merged_values": merged,
        "merged_split": "by the closest non-negative counts to the bins' noisy counts",
        "iterations": iters,
    }
    return Fit(
        domain,
        model,
        float(total),
        mapping,
        one_way,
        report,
        {"split": split, "draw": draw},
        int(sample.integers(2**32)),
    )


def synthesize(
    rows: dict[str, list[str]],
    header: list[str],
    domain: TableDomain,
    *,
    epsilon: float,
    delta: float,
    seed: int,
    output_rows: int | None = None,
    iters: int = DEFAULT_ITERS,
    allow_clipping: bool = False,
) -> Synthesis:
    """Run MST on a table held in memory as text columns; the same seed gives the same
    output. (``manatee-provision`` reads files through an engine and writes in pieces.)

    ``output_rows`` fixes the number of rows; by default it is the model's noisy estimate
    of the input's size (the true size is not released). ``allow_clipping`` accepts
    numeric columns with many values outside their edges (see `TableDomain.check`).
    """
    from .engines import open_engine
    from .engines.sql import one_and_two_way

    if output_rows is not None and output_rows < 1:
        raise ValueError("the number of output rows must be at least 1")
    started = time.monotonic()
    cliques = one_and_two_way(domain.names)
    with open_engine() as engine:
        table = engine.from_columns(header, rows)
        census = domain.check(
            table, max_clipped_share=None if allow_clipping else MAX_CLIPPED_SHARE
        )
        real = table.marginals(domain, cliques)
        model = fit(real, domain, epsilon=epsilon, delta=delta, seed=seed, iters=iters)
        count = output_rows or model.estimated_rows
        columns: dict[str, list[str]] = {name: [] for name in domain.names}
        for piece in model.pieces(count):
            for name, values in piece.text().items():
                columns[name].extend(values)
        result = Synthesis(domain, columns)
        output = engine.from_columns(domain.names, columns).marginals(domain, cliques)
    result.report = {
        **model.report,
        "rows": {"output": count},
        "seconds": round(time.monotonic() - started, 2),
        "engine": engine.description,
        # Everything below compares with the real table: not differentially private.
        "not_private": {
            "input_rows": census.rows,
            "clipped_values": {n: c.clipped for n, c in census.columns.items()},
            "empty_values": {n: c.empty for n, c in census.columns.items()},
            "distances": distances(domain, real, output),
        },
    }
    return result


def _mbi_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mbi")
    except PackageNotFoundError:  # pragma: no cover - imported but not installed
        return "(unknown version)"
