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
value drawn inside it (`domain.Column.decode`). Neighbouring tables differ by one added or
removed record.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import privacy
from .domain import MAX_CLIPPED_SHARE, TableDomain
from .errors import MissingExtraError
from .quality import distances

#: Values with a noisy count below this many sigmas are merged (the paper's choice).
COMPRESS_SIGMAS = 3.0
DEFAULT_ITERS = 1000


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


@contextlib.contextmanager
def _numpy_global_seed(seed: int) -> Iterator[None]:
    """mbi samples with numpy's global generator: seed it, then put back what was there."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
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
        """The table as a pandas DataFrame, numbers parsed."""
        import pandas

        data = {}
        for column in self.domain.columns:
            values = self.columns[column.name]
            if column.kind == "integer":
                data[column.name] = np.array([int(v) for v in values], dtype=np.int64)
            elif column.kind == "float":
                data[column.name] = np.array([float(v) for v in values], dtype=np.float64)
            else:
                data[column.name] = values
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
    """Run MST on a table given as text columns; the same seed gives the same output.

    ``output_rows`` fixes the number of rows; by default it is the model's noisy estimate
    of the input's size (the true size is not released). ``allow_clipping`` accepts
    numeric columns with many values outside their edges (see `TableDomain.encode`).
    """
    if iters < 1:
        raise ValueError("iters must be at least 1")
    if output_rows is not None and output_rows < 1:
        raise ValueError("the number of output rows must be at least 1")
    started = time.monotonic()
    codes, clipped = domain.encode(
        header, rows, max_clipped_share=None if allow_clipping else MAX_CLIPPED_SHARE
    )
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
    data = mbi.Dataset(codes, full_domain)

    # 1. every 1-way marginal, with Gaussian noise
    one_way = []
    for name in names:
        counts = np.asarray(data.project((name,)).datavector(), dtype=np.float64)
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
    data_c = data.compress(mapping) if mapping else data
    model_domain = data_c.domain
    measurements = [m.compress(mapping, full_domain) for m in one_way]

    estimator = estimation.MirrorDescent()
    model = estimator.estimate(model_domain, measurements, known_total=total, iters=iters)

    # 2. choose the 2-way marginals: a spanning tree, with the exponential mechanism
    weights = {}
    for pair in itertools.combinations(names, 2):
        in_data = np.asarray(data_c.project(pair).datavector(), dtype=np.float64)
        in_model = np.asarray(model.project(pair).datavector(), dtype=np.float64)
        weights[pair] = float(np.abs(in_data - in_model).sum())
    tree = _select_tree(weights, names, select_epsilon, select)

    # 3. measure them, with Gaussian noise
    for pair in tree:
        counts = np.asarray(data_c.project(pair).datavector(), dtype=np.float64)
        noisy = counts + noise2.normal(0.0, sigma2, counts.size)
        measurements.append(LinearMeasurement(noisy, pair, stddev=sigma2))
    model = estimator.estimate(
        model_domain, measurements, known_total=total, iters=iters, warm_start=model
    )

    # sample, split merged values back, draw a value inside each bin
    count = output_rows or max(1, round(float(total)))
    with _numpy_global_seed(int(sample.integers(2**32))):
        synthetic = model.synthetic_data(rows=count)
    sampled = {name: np.asarray(synthetic.data[name], dtype=np.int64) for name in names}
    for name, measurement in zip(names, one_way, strict=True):
        if name in mapping:
            group = int(mapping[name].max())
            estimate = float(np.asarray(model.project((name,)).datavector())[group])
            noisy = np.asarray(measurement.noisy_measurement, dtype=np.float64)
            sampled[name] = _decompress(sampled[name], mapping[name], noisy, estimate, split)
    columns = {column.name: column.decode(sampled[column.name], draw) for column in domain.columns}
    result = Synthesis(domain, columns)

    spent = one_way_rho + selection_rho + two_way_rho
    result.report = {
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
        "rows": {"output": count},
        "iterations": iters,
        "seconds": round(time.monotonic() - started, 2),
        # Everything below compares with the real table: not differentially private.
        "not_private": {
            "input_rows": len(rows[names[0]]),
            "clipped_values": clipped,
            "distances": distances(domain, codes, result.columns),
        },
    }
    return result


def _mbi_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mbi")
    except PackageNotFoundError:  # pragma: no cover - imported but not installed
        return "(unknown version)"
