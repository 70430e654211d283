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
