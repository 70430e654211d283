"""How close a synthetic table is to the real one, and how useful it is to a model.

The distance of two distributions over the same bins is half the L1 distance of their
normalised counts: 0 for equal, 1 for disjoint. It is computed on the domain's bins, for
every column (1-way) and every pair of columns (2-way), from the marginals the engine
counts. The utility score fits a linear model from sums over rows (X'X and X'y), read in
pieces, so neither table is held whole. These numbers compare with the real table, so
they are **not** differentially private: they are for the data owner.

Empty values: a column that may be empty has an empty bin like any other in the
distances. In the linear model an empty category is one more category; an empty number
is 0 beside an indicator feature (1 where empty), so the model learns an empty value's
own effect; rows whose numeric target is empty are left out of the fit and the score.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .domain import CATEGORY, TableDomain

if TYPE_CHECKING:
    from .engines.base import Marginals, Table

#: A piece of a table as a model reads it: category bins (int) and numbers (float).
Batch = dict[str, np.ndarray]


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Half the L1 distance of two count arrays, each normalised to sum to 1."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    return float(0.5 * np.abs(p / max(1.0, p.sum()) - q / max(1.0, q.sum())).sum())


def distances(domain: TableDomain, real: Marginals, synthetic: Marginals) -> dict[str, Any]:
    """1-way and 2-way total-variation distances between two tables' marginals."""
    one = {name: total_variation(real[(name,)], synthetic[(name,)]) for name in domain.names}
    two = {
        f"{a} x {b}": total_variation(real[(a, b)], synthetic[(a, b)])
        for a, b in itertools.combinations(domain.names, 2)
    }
    return {
        "one_way": {
            "mean": float(np.mean(list(one.values()))),
            "max": max(one.values()),
            "columns": one,
        },
        "two_way": {
            "mean": float(np.mean(list(two.values()))),
            "max": max(two.values()),
            "pairs": two,
        },
    }


def _design(domain: TableDomain, batch: Batch, target: str) -> np.ndarray:
    """Features for a linear model: numbers as they are, categories one-hot, an intercept;
    an empty number is 0 with an indicator."""
    parts = [np.ones((len(batch[target]), 1))]
    for column in domain.columns:
        if column.name == target:
            continue
        values = batch[column.name]
        if column.kind == CATEGORY:
            parts.append((values[:, None] == np.arange(1, column.size)[None, :]).astype(np.float64))
        elif column.empty:
            numbers = np.asarray(values, dtype=np.float64)
            blank = np.isnan(numbers)
            parts.append(np.where(blank, 0.0, numbers)[:, None])
            parts.append(blank.astype(np.float64)[:, None])
        else:
            parts.append(np.asarray(values, dtype=np.float64)[:, None])
    return np.hstack(parts)


def _rows_with_target(domain: TableDomain, batch: Batch, target: str) -> Batch:
    """The batch without the rows whose numeric target is empty (nothing to predict)."""
    column = domain.column(target)
    if column.kind == CATEGORY or not column.empty:
        return batch
    keep = ~np.isnan(np.asarray(batch[target], dtype=np.float64))
    return batch if keep.all() else {name: values[keep] for name, values in batch.items()}


def _response(domain: TableDomain, batch: Batch, target: str) -> np.ndarray:
    """What the model predicts: the number, or one indicator per category."""
    column = domain.column(target)
    if column.kind == CATEGORY:
        return (batch[target][:, None] == np.arange(column.size)[None, :]).astype(np.float64)
    return np.asarray(batch[target], dtype=np.float64)


@dataclass
class _Sums:
    """X'X, X'y and the largest |x| per feature, added up piece by piece."""

    xtx: np.ndarray | None = None
    xty: np.ndarray | None = None
    largest: np.ndarray | None = None

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        largest = np.abs(x).max(axis=0) if len(x) else np.zeros(x.shape[1])
        if self.xtx is None:
            self.xtx, self.xty, self.largest = x.T @ x, x.T @ y, largest
            return
        assert self.xty is not None and self.largest is not None
        self.xtx += x.T @ x
        self.xty += x.T @ y
        self.largest = np.maximum(self.largest, largest)

    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """Ridge-stabilised least squares on features scaled by their largest value;
        returns (coefficients, scale)."""
        assert self.xtx is not None and self.xty is not None and self.largest is not None
        scale = np.maximum(self.largest, 1e-12)
        xtx = self.xtx / np.outer(scale, scale)
        xty = self.xty / (scale[:, None] if self.xty.ndim == 2 else scale)
        ridge = 1e-6 * np.eye(xtx.shape[0])
        return np.linalg.solve(xtx + ridge, xty), scale


@dataclass
class _Score:
    """A fitted model's error on held-out rows, added up piece by piece."""

    coef: np.ndarray
    scale: np.ndarray
    categorical: bool
    rows: int = 0
    right: int = 0
    residual: float = 0.0
    totals: list[float] = field(default_factory=lambda: [0.0, 0.0])

    def add(self, x: np.ndarray, truth: np.ndarray) -> None:
        predicted = (x / self.scale) @ self.coef
        self.rows += len(truth)
        if self.categorical:
            self.right += int(np.sum(np.argmax(predicted, axis=1) == truth))
            return
        self.residual += float(np.sum((truth - predicted) ** 2))
        self.totals[0] += float(np.sum(truth))
        self.totals[1] += float(np.sum(truth**2))

    def value(self) -> float:
        if self.categorical:
            return self.right / max(1, self.rows)
        spread = self.totals[1] - self.totals[0] ** 2 / max(1, self.rows)
        return float(1.0 - self.residual / spread)


def _fit(domain: TableDomain, train: Iterable[Batch], target: str) -> _Sums:
    sums = _Sums()
    for batch in train:
        batch = _rows_with_target(domain, batch, target)
        sums.add(_design(domain, batch, target), _response(domain, batch, target))
    return sums


def scores(
    domain: TableDomain,
    trains: list[Iterable[Batch]],
    holdout: Iterable[Batch],
    target: str,
) -> tuple[list[float], int]:
    """Each training table's linear model of ``target``, scored on the same held-out rows
    (R^2 for a number, accuracy for a category), reading the holdout once; and how many
    held-out rows there were."""
    categorical = domain.column(target).kind == CATEGORY
    fitted = [_Score(*_fit(domain, train, target).coefficients(), categorical) for train in trains]
    for batch in holdout:
        batch = _rows_with_target(domain, batch, target)
        x = _design(domain, batch, target)
        for score in fitted:
            score.add(x, batch[target])
    return [score.value() for score in fitted], fitted[0].rows


@dataclass
class _Reread:
    """A table's batches, read afresh each time they are iterated."""

    table: Table
    domain: TableDomain

    def __iter__(self) -> Iterator[Batch]:
        return self.table.batches(self.domain)


def utility_of(
    domain: TableDomain, real: Table, synthetic: Table, holdout: Table, target: str
) -> dict[str, Any]:
    """Train on synthetic, test on real: a linear model of ``target`` trained on the output
    and on the real input, each scored on the owner's held-out real rows (R^2 for a number,
    accuracy for a category). Not private: it reads the real rows."""
    (on_output, on_input), holdout_rows = scores(
        domain,
        [_Reread(synthetic, domain), _Reread(real, domain)],
        _Reread(holdout, domain),
        target,
    )
    return {
        "target": target,
        "model": "linear least squares (categories one-hot)",
        "metric": "accuracy" if domain.column(target).kind == CATEGORY else "R^2",
        "holdout_rows": holdout_rows,
        "trained_on_output": on_output,
        "trained_on_input": on_input,
    }


def utility(
    domain: TableDomain,
    real: dict[str, list[str]],
    synthetic: dict[str, list[str]],
    holdout: dict[str, list[str]],
    target: str,
) -> dict[str, Any]:
    """`utility_of` for tables held in memory as text columns."""
    from .engines import open_engine

    with open_engine() as engine:
        tables = [engine.from_columns(domain.names, t) for t in (real, synthetic, holdout)]
        return utility_of(domain, tables[0], tables[1], tables[2], target)
