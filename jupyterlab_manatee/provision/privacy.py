"""Privacy accounting: zero-concentrated DP (zCDP) budgets and their (epsilon, delta) meaning.

MST accounts in rho-zCDP (Bun and Steinke 2016), where the Gaussian mechanism with L2
sensitivity ``s`` and noise ``sigma`` costs ``s**2 / (2 sigma**2)``, an epsilon-DP
exponential mechanism costs ``epsilon**2 / 8`` (its bounded-range property), and costs add
up. The budget is turned to and from (epsilon, delta)-DP with the conversion of Canonne,
Kamath and Steinke (2020, "The Discrete Gaussian for Differential Privacy", Prop. 12 /
Cor. 13): rho-zCDP implies (epsilon, delta)-DP for

    delta = min over alpha > 1 of  exp((alpha - 1) (alpha rho - epsilon)) / (alpha - 1)
                                   * (1 - 1/alpha) ** alpha

Every alpha > 1 gives a valid delta, so minimising over a finite grid of alphas errs on
the safe side (a slightly larger delta, hence a slightly smaller rho for a target).
"""

from __future__ import annotations

import math

import numpy as np

# alpha - 1 from 1e-6 to 1e6, geometric
_ALPHAS = 1.0 + np.logspace(-6, 6, 6001)


def _check(epsilon: float, delta: float) -> None:
    if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be a positive number, got {epsilon!r}")
    if not (isinstance(delta, (int, float)) and 0 < delta < 1):
        raise ValueError(f"delta must be between 0 and 1 (exclusive), got {delta!r}")


def delta_of(rho: float, epsilon: float) -> float:
    """The delta at which rho-zCDP gives epsilon-DP (Canonne, Kamath, Steinke 2020)."""
    if rho <= 0:
        return 0.0
    a = _ALPHAS
    log_delta = (a - 1) * (a * rho - epsilon) + a * np.log1p(-1 / a) - np.log(a - 1)
    return float(min(1.0, np.exp(np.min(log_delta))))


def rho_for(epsilon: float, delta: float) -> float:
    """The largest zCDP budget rho whose (epsilon, delta) guarantee meets the target."""
    _check(epsilon, delta)
    low, high = 0.0, float(epsilon)  # rho-zCDP never gives epsilon < rho
    for _ in range(100):
        middle = (low + high) / 2
        if delta_of(middle, epsilon) <= delta:
            low = middle
        else:
            high = middle
    return low


def epsilon_for(rho: float, delta: float) -> float:
    """The smallest epsilon that rho-zCDP guarantees at ``delta`` (rounded up)."""
    if rho <= 0:
        return 0.0
    if not 0 < delta < 1:
        raise ValueError(f"delta must be between 0 and 1 (exclusive), got {delta!r}")
    # Bun and Steinke's classic bound is always valid: a start for the search.
    low, high = 0.0, rho + 2 * math.sqrt(rho * math.log(1 / delta))
    for _ in range(100):
        middle = (low + high) / 2
        if delta_of(rho, middle) <= delta:
            high = middle
        else:
            low = middle
    return high


def gaussian_sigma(rho: float, measurements: int) -> float:
    """Noise for ``measurements`` marginals of L2 sensitivity 1 each, costing ``rho`` together.

    Adding or removing one record changes one cell of every marginal by one, so the
    marginals together have L2 sensitivity sqrt(measurements).
    """
    return math.sqrt(measurements / (2 * rho))


def exponential_epsilon(rho: float, rounds: int) -> float:
    """Epsilon of each of ``rounds`` exponential mechanisms that together cost ``rho``."""
    return math.sqrt(8 * rho / rounds)
