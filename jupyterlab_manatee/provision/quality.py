"""How close a synthetic table is to the real one: total-variation distances of marginals.

The distance of two distributions over the same bins is half the L1 distance of their
normalised counts: 0 for equal, 1 for disjoint. It is computed on the domain's bins, for
every column (1-way) and every pair of columns (2-way). These numbers compare with the
real table, so they are **not** differentially private: they are for the data owner.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .domain import TableDomain


def _histogram(codes: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    flat = np.ravel_multi_index(tuple(codes), tuple(sizes))
    counts = np.bincount(flat, minlength=int(np.prod(sizes))).astype(np.float64)
    return counts / max(1.0, counts.sum())


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Half the L1 distance of two normalised histograms."""
    return float(0.5 * np.abs(p - q).sum())


def distances(
    domain: TableDomain, real: dict[str, np.ndarray], synthetic: dict[str, list[str]]
) -> dict[str, Any]:
    """1-way and 2-way total-variation distances between the real codes and an output."""
    output = {c.name: c.encode(synthetic[c.name], input_check=False)[0] for c in domain.columns}
    sizes = {c.name: c.size for c in domain.columns}
    one = {
        name: total_variation(
            _histogram([real[name]], [sizes[name]]), _histogram([output[name]], [sizes[name]])
        )
        for name in domain.names
    }
    two = {}
    for a, b in itertools.combinations(domain.names, 2):
        shape = [sizes[a], sizes[b]]
        two[f"{a} x {b}"] = total_variation(
            _histogram([real[a], real[b]], shape), _histogram([output[a], output[b]], shape)
        )
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


def _design(domain: TableDomain, columns: dict[str, list[str]], target: str) -> np.ndarray:
    """Features for a linear model: numbers as they are, categories one-hot, an intercept."""
    parts = [np.ones((len(columns[target]), 1))]
    for column in domain.columns:
        if column.name == target:
            continue
        values = columns[column.name]
        if column.kind == "category":
            parts.append(
                np.array([[v == c for c in column.categories[1:]] for v in values], dtype=float)
            )
        else:
            parts.append(np.array([float(v) for v in values], dtype=np.float64)[:, None])
    return np.hstack(parts)


def _fit_score(
    domain: TableDomain,
    train: dict[str, list[str]],
    test: dict[str, list[str]],
    target: str,
) -> float:
    column = domain.column(target)
    x_train, x_test = _design(domain, train, target), _design(domain, test, target)
    scale = np.maximum(np.abs(x_train).max(axis=0), 1e-12)
    x_train, x_test = x_train / scale, x_test / scale
    ridge = 1e-6 * np.eye(x_train.shape[1])
    if column.kind == "category":
        # one linear score per category (least squares on its indicator); the highest wins
        y = np.array([[v == c for c in column.categories] for v in train[target]], dtype=float)
        coef = np.linalg.solve(x_train.T @ x_train + ridge, x_train.T @ y)
        predicted = np.array(column.categories)[np.argmax(x_test @ coef, axis=1)]
        return float(np.mean(predicted == np.array(test[target])))
    y = np.array([float(v) for v in train[target]])
    coef = np.linalg.solve(x_train.T @ x_train + ridge, x_train.T @ y)
    truth = np.array([float(v) for v in test[target]])
    residual = np.sum((truth - x_test @ coef) ** 2)
    return float(1.0 - residual / np.sum((truth - truth.mean()) ** 2))


def utility(
    domain: TableDomain,
    real: dict[str, list[str]],
    synthetic: dict[str, list[str]],
    holdout: dict[str, list[str]],
    target: str,
) -> dict[str, Any]:
    """Train on synthetic, test on real: a linear model of ``target`` trained on the output
    and on the real input, each scored on the owner's held-out real rows (R^2 for a number,
    accuracy for a category). Not private: it reads the real rows."""
    metric = "accuracy" if domain.column(target).kind == "category" else "R^2"
    return {
        "target": target,
        "model": "linear least squares (categories one-hot)",
        "metric": metric,
        "holdout_rows": len(holdout[target]),
        "trained_on_output": _fit_score(domain, synthetic, holdout, target),
        "trained_on_input": _fit_score(domain, real, holdout, target),
    }
