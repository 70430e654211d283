"""AIM: an adaptive and iterative alternative to MST, on the same counts and accounting.

The mechanism of McKenna, Mullins, Sheldon and Miklau (2022, "AIM: An Adaptive and
Iterative Mechanism for Differentially Private Synthetic Data"), written from the paper
on the ``mbi`` library. MST spends a fixed third of its budget on one spanning tree of
pairs; AIM spends its budget round by round on whichever marginal the current model gets
most wrong, and spends more per round as the model improves:

1. The **workload** is every 2-way marginal (or every 3-way one, ``degree=3``); the
   **candidates** are every clique inside a workload clique, each weighted by how many
   workload columns it shares (``sum |c & w|`` over the workload).
2. With ``T = 16 d`` rounds planned, a round costs ``rho / T`` at first: 90% on a
   Gaussian measurement (``sigma = sqrt(T / (2 * 0.9 rho))``), 10% on an exponential
   mechanism (``epsilon = sqrt(8 * 0.1 rho / T)``). Every 1-way marginal is measured
   first at that sigma, and a model is estimated.
3. Each round: the candidates whose junction tree stays within ``max_model_size``
   megabytes (scaled by the share of the budget spent so far; cliques already covered
   are free) compete in an exponential mechanism whose quality is the weighted L1 error
   of the model on the candidate minus the noise a measurement would have
   (``sqrt(2/pi) sigma`` per cell); its sensitivity is the largest weight. The chosen
   marginal is measured with Gaussian noise and the model is estimated again, warm
   started.
4. **Annealing**: when measuring moved the model's marginal by less than the expected
   noise (L1 change at most ``sqrt(2/pi) sigma`` per cell), the model already knew it;
   sigma is halved and epsilon doubled (a round then costs four times as much).
5. When less than two rounds' worth is left, the last round spends exactly what is
   left, so the rounds never spend more than rho (``Round.rho`` records each one).

Unlike MST, AIM merges no values (the paper does not). Every count comes from the
``marginals`` an engine computed, indexed by bin in the domain's order; noise is drawn in
that order from a seeded generator, so the same counts and seed give the same model and
the same file. The model is an `mst.Fit` (no merged values): the same sampling in pieces
and the same writer.
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from . import privacy
from .domain import TableDomain
from .engines.base import Marginals
from .mst import DEFAULT_ITERS, Fit, _import_mbi, _mbi_version
from .plan import MERGE_SIGMAS, Plan, _round_up

#: Rounds planned per column (the paper's T = 16 d).
ROUNDS_PER_COLUMN = 16
#: Share of each round's budget spent on the measurement; the rest on the selection.
MEASURE_SHARE = 0.9
#: The paper's default cap on the model's junction tree, in megabytes.
DEFAULT_MAX_MODEL_SIZE = 80.0
#: Estimation iterations after each round, as the paper's (the final one uses ``iters``).
DEFAULT_ROUND_ITERS = 1000

Clique = tuple[str, ...]
#: a clique of the model, whose attributes are the columns' positions
Attrs = tuple[int, ...]


def workload(names: Sequence[str], degree: int = 2) -> list[Clique]:
    """Every ``degree``-way clique in the domain's order (all columns when fewer)."""
    if degree not in (2, 3):
        raise ValueError(f"the AIM workload is of 2-way or 3-way marginals, not {degree}-way")
    return list(itertools.combinations(names, min(degree, len(names))))


def candidates(names: Sequence[str], degree: int = 2) -> dict[Clique, float]:
    """The cliques inside some workload clique, each with its weight, in canonical order
    (by size, then the domain's order)."""
    work = workload(names, degree)
    result: dict[Clique, float] = {}
    for size in range(1, min(degree, len(names)) + 1):
        for clique in itertools.combinations(names, size):
            members = set(clique)
            result[clique] = float(sum(len(members & set(w)) for w in work))
    return result


def cliques(names: Sequence[str], degree: int = 2) -> list[Clique]:
    """What an engine must count for AIM: every candidate (1-way and 2-way among them)."""
    return list(candidates(names, degree))


def _closure(measured: Sequence[Clique]) -> set[Clique]:
    """Every clique inside a measured one: measuring these adds nothing to the model."""
    return {
        sub
        for clique in measured
        for size in range(1, len(clique) + 1)
        for sub in itertools.combinations(clique, size)
    }


def _log_factors(model: Any) -> list[tuple[Attrs, np.ndarray]]:
    """The model's log-potentials as numpy arrays, by clique (in the model's order)."""
    return [
        (tuple(clique), np.asarray(factor.values, dtype=np.float64))
        for clique, factor in model.potentials.tables.items()
    ]


def _aligned(attrs: Attrs, values: np.ndarray, target: Attrs) -> np.ndarray:
    """``values`` over ``attrs`` with its axes in ``target``'s order, broadcastable."""
    order = [attrs.index(a) for a in target if a in attrs]
    shape = [values.shape[attrs.index(a)] if a in attrs else 1 for a in target]
    return np.transpose(values, order).reshape(shape)


def _joined_size(factors: list[tuple[Attrs, np.ndarray]], name: int, sizes: dict[int, int]) -> int:
    """Cells of the factor that eliminating ``name`` makes."""
    joined = {b for attrs, _ in factors if name in attrs for b in attrs}
    return math.prod(sizes[b] for b in joined)


def _marginal(
    factors: list[tuple[Attrs, np.ndarray]],
    clique: Attrs,
    order: Sequence[int],
    sizes: dict[int, int],
    total: float,
) -> np.ndarray:
    """The model's marginal on ``clique`` (flattened, summing to ``total``) by variable
    elimination in numpy: exact, deterministic, and without compiling a program per
    clique as mbi's ``project`` does for a clique outside the model's.

    Eliminates greedily the column whose combined factor is smallest (ties in the
    domain's order)."""
    psi = list(factors)
    remaining = [a for a in order if a not in clique and any(a in f[0] for f in psi)]
    while remaining:
        z = min(remaining, key=lambda a: _joined_size(psi, a, sizes))
        remaining.remove(z)
        hit = [f for f in psi if z in f[0]]
        psi = [f for f in psi if z not in f[0]]
        joined = tuple(b for b in order if any(b in attrs for attrs, _ in hit))
        combined = sum(_aligned(attrs, values, joined) for attrs, values in hit)
        combined = np.broadcast_to(combined, [sizes[b] for b in joined])
        axis = joined.index(z)
        top = combined.max(axis=axis, keepdims=True)
        reduced = np.log(np.exp(combined - top).sum(axis=axis)) + np.squeeze(top, axis)
        psi.append((tuple(b for b in joined if b != z), reduced))
    log = np.zeros([sizes[a] for a in clique])
    for attrs, values in psi:
        log = log + _aligned(attrs, values, clique)
    probabilities = np.exp(log - log.max())
    return (probabilities / probabilities.sum() * total).ravel()


def _exponential(
    scores: np.ndarray, epsilon: float, sensitivity: float, rng: np.random.Generator
) -> int:
    """The exponential mechanism: index ``i`` with probability proportional to
    ``exp(epsilon * scores[i] / (2 sensitivity))``."""
    logits = epsilon * (scores - scores.max()) / (2.0 * sensitivity)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum()
    return int(rng.choice(scores.size, p=probabilities))


@dataclass(frozen=True)
class Round:
    """One round: what was measured, with what noise, and what it cost."""

    clique: Clique
    rho: float
    sigma: float
    epsilon: float
    #: the cap on the model's size this round (MB) and the model's size with the clique
    size_limit_mb: float
    model_size_mb: float
    #: sigma was halved after this round
    annealed: bool


def fit(
    marginals: Marginals,
    domain: TableDomain,
    *,
    epsilon: float,
    delta: float,
    seed: int,
    iters: int = DEFAULT_ITERS,
    degree: int = 2,
    max_model_size: float = DEFAULT_MAX_MODEL_SIZE,
    round_iters: int = DEFAULT_ROUND_ITERS,
    rounds: int | None = None,
) -> Fit:
    """Run AIM on a table's exact counts (see the module's doc).

    ``marginals`` holds every clique of `cliques` (``degree``) as integer arrays indexed by
    bin in the domain's order. ``rounds`` overrides the planned ``T = 16 d``."""
    if iters < 1 or round_iters < 1:
        raise ValueError("iters must be at least 1")
    if max_model_size <= 0:
        raise ValueError("the model size cap must be positive")
    rho = privacy.rho_for(epsilon, delta)
    mbi = _import_mbi()
    from mbi import LinearMeasurement, estimation
    from mbi.junction_tree import hypothetical_model_size

    names = domain.names
    d = len(names)
    planned = rounds or ROUNDS_PER_COLUMN * d
    weights = candidates(names, degree)
    answers = {c: np.asarray(marginals[c], dtype=np.float64).ravel() for c in weights}
    sensitivity = max(weights.values())
    noise, select, sample, split, draw = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )
    # The model's attributes are the columns' positions, not their names: mbi iterates
    # sets of attributes when it samples, and a set of strings iterates in an order that
    # changes from process to process (hash randomization); of integers, it does not.
    ids = {name: i for i, name in enumerate(names)}

    def key(clique: Clique) -> tuple[int, ...]:
        return tuple(ids[n] for n in clique)

    sizes = {ids[c.name]: c.size for c in domain.columns}
    positions = list(range(d))
    model_domain = mbi.Domain(positions, [sizes[i] for i in positions])
    estimator = estimation.MirrorDescent()

    sigma = math.sqrt(planned / (2 * MEASURE_SHARE * rho))
    select_epsilon = math.sqrt(8 * (1 - MEASURE_SHARE) * rho / planned)

    # every 1-way marginal first, at the first rounds' sigma
    one_way = []
    for name in names:
        counts = answers[(name,)]
        noisy = counts + noise.normal(0.0, sigma, counts.size)
        one_way.append(LinearMeasurement(noisy, key((name,)), stddev=sigma))
    one_way_sigma = sigma
    one_way_rho = d / (2 * sigma**2)
    total = float(estimation.minimum_variance_unbiased_total(one_way))
    measurements = list(one_way)
    measured: list[Clique] = [(n,) for n in names]
    model = estimator.estimate(model_domain, measurements, known_total=total, iters=round_iters)

    used = one_way_rho
    history: list[Round] = []
    last = False
    while not last:
        cost = select_epsilon**2 / 8 + 1 / (2 * sigma**2)
        if rho - used < 2 * cost:
            # the last round spends what is left (a hair less, against rounding)
            remaining = (rho - used) * (1 - 1e-9)
            sigma = math.sqrt(1 / (2 * MEASURE_SHARE * remaining))
            select_epsilon = math.sqrt(8 * (1 - MEASURE_SHARE) * remaining)
            cost = select_epsilon**2 / 8 + 1 / (2 * sigma**2)
            last = True
        used += cost
        limit = max_model_size * used / rho
        free = _closure(measured)
        allowed: list[tuple[Clique, float]] = []
        for clique in weights:
            size = hypothetical_model_size(model_domain, [*map(key, measured), key(clique)])
            if clique in free or size <= limit:
                allowed.append((clique, size))
        factors = _log_factors(model)
        scores = np.array(
            [
                weights[c]
                * (
                    np.abs(answers[c] - _marginal(factors, key(c), positions, sizes, total)).sum()
                    - math.sqrt(2 / math.pi) * sigma * answers[c].size
                )
                for c, _ in allowed
            ]
        )
        chosen, size = allowed[_exponential(scores, select_epsilon, sensitivity, select)]
        counts = answers[chosen]
        noisy = counts + noise.normal(0.0, sigma, counts.size)
        measurements.append(LinearMeasurement(noisy, key(chosen), stddev=sigma))
        if chosen not in measured:
            measured.append(chosen)
        before = _marginal(_log_factors(model), key(chosen), positions, sizes, total)
        model = estimator.estimate(
            model_domain, measurements, known_total=total, iters=round_iters, warm_start=model
        )
        after = _marginal(_log_factors(model), key(chosen), positions, sizes, total)
        anneal = (
            not last
            and np.abs(after - before).sum() <= math.sqrt(2 / math.pi) * sigma * counts.size
        )
        history.append(Round(chosen, cost, sigma, select_epsilon, limit, float(size), bool(anneal)))
        if anneal:
            sigma /= 2
            select_epsilon *= 2

    model = estimator.estimate(
        model_domain, measurements, known_total=total, iters=iters, warm_start=model
    )
    spent = one_way_rho + sum(r.rho for r in history)
    sigmas = [r.sigma for r in history]
    report = {
        "mechanism": "AIM (McKenna, Mullins, Sheldon, Miklau 2022) on mbi " + _mbi_version(),
        "privacy": {
            "epsilon": epsilon,
            "delta": delta,
            "rho": rho,
            "rho_spent": spent,
            "epsilon_spent": privacy.epsilon_for(spent, delta),
            "neighbouring": "tables that differ by one added or removed record",
            "one_way": {"rho": one_way_rho, "sigma": one_way_sigma, "marginals": d},
            "rounds": {
                "planned": planned,
                "run": len(history),
                "rho": sum(r.rho for r in history),
                "sigma_first": sigmas[0],
                "sigma_smallest": min(sigmas),
                "sigma_last": sigmas[-1],
                "annealed": sum(r.annealed for r in history),
            },
            "noise": (
                f"1-way sigma {one_way_sigma:.3g}; {len(history)} rounds, sigma "
                f"{sigmas[0]:.3g} down to {min(sigmas):.3g}"
            ),
        },
        "workload": f"every {min(degree, d)}-way marginal",
        "max_model_size_mb": max_model_size,
        "model_size_mb": float(hypothetical_model_size(model_domain, [*map(key, measured)])),
        "selected_marginals": [list(c) for c in dict.fromkeys(r.clique for r in history)],
        "rounds": [{**asdict(r), "clique": list(r.clique)} for r in history],
        "merged_values": {},
        "iterations": iters,
        "round_iterations": round_iters,
    }
    return Fit(
        domain,
        model,
        total,
        {},
        one_way,
        report,
        {"split": split, "draw": draw},
        int(sample.integers(2**32)),
        keys=ids,
    )


@dataclass(frozen=True)
class AimPlan(Plan):
    """The plan of an AIM run: its rounds and their budget are adaptive, so it states the
    first rounds' noise, which is also the worst any measurement gets (annealing only
    lowers sigma, and the last round has at least one first round's budget)."""

    rounds: int = 0

    pair_noise = "the first noise"

    def head(self) -> list[str]:
        return [
            f"plan: {self.rows} input rows (not private), {len(self.bins)} columns, epsilon "
            f"{self.epsilon:g}, delta {self.delta:g}, AIM",
            f"  AIM measures every 1-way marginal, then in up to {self.rounds} adaptive rounds "
            "the marginal (1-way or of the workload) the model gets most wrong; "
            f"noise per measured bin or cell: {self.sigma1:.3g} rows at first and at worst, "
            "halved each time a round finds the model already right",
        ]

    def swamped_reason(self) -> str:
        return (
            f"under {MERGE_SIGMAS:g} times the first noise {MERGE_SIGMAS * self.sigma1:.3g}: "
            "its shape may be mostly noise"
        )


def make_plan(domain: TableDomain, rows: int, epsilon: float, delta: float) -> AimPlan:
    """The plan of an AIM run: the thresholds of `plan.make_plan`, against AIM's first
    (and worst-case) noise ``sqrt(16 d / (2 * 0.9 rho))``."""
    rho = privacy.rho_for(epsilon, delta)
    d = len(domain.columns)
    planned = ROUNDS_PER_COLUMN * d
    sigma = math.sqrt(planned / (2 * MEASURE_SHARE * rho))
    bins = {c.name: c.size for c in domain.columns}
    swamped = [n for n, size in bins.items() if size > 1 and rows / size < MERGE_SIGMAS * sigma]
    pairs = [
        (a, b)
        for a, b in itertools.combinations(domain.names, 2)
        if rows / (bins[a] * bins[b]) < sigma
    ]
    need1 = min((rows / size for size in bins.values() if size > 1), default=rows) / MERGE_SIGMAS
    need2 = min(
        (rows / (bins[a] * bins[b]) for a, b in itertools.combinations(domain.names, 2)),
        default=need1,
    )
    rho_needed = planned / (2 * MEASURE_SHARE * min(need1, need2) ** 2)
    return AimPlan(
        rows=rows,
        epsilon=epsilon,
        delta=delta,
        sigma1=sigma,
        sigma2=sigma,
        bins=bins,
        swamped=swamped,
        noisy_pairs=pairs,
        epsilon_needed=_round_up(privacy.epsilon_for(rho_needed, delta)),
        max_bins=max(1, math.floor(rows / (MERGE_SIGMAS * sigma))),
        rounds=planned,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """AIM's options of ``manatee-provision``."""
    parser.add_argument(
        "--aim-degree",
        type=int,
        choices=(2, 3),
        default=2,
        help="--method aim: the workload, every 2-way (default) or 3-way marginal",
    )
    parser.add_argument(
        "--aim-max-model-size",
        type=float,
        default=DEFAULT_MAX_MODEL_SIZE,
        metavar="MB",
        help=f"--method aim: the cap on the model's size (default {DEFAULT_MAX_MODEL_SIZE:g})",
    )
    parser.add_argument(
        "--aim-round-iters",
        type=int,
        default=DEFAULT_ROUND_ITERS,
        help=f"--method aim: estimation iterations after each round (default "
        f"{DEFAULT_ROUND_ITERS}; --iters is the final estimation's)",
    )


def fit_from_args(marginals: Marginals, domain: TableDomain, args: Any, seed: int) -> Fit:
    """`fit` with the command's options."""
    return fit(
        marginals,
        domain,
        epsilon=args.epsilon,
        delta=args.delta,
        seed=seed,
        iters=args.iters,
        degree=args.aim_degree,
        max_model_size=args.aim_max_model_size,
        round_iters=args.aim_round_iters,
    )
