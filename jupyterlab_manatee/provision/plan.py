"""The plan shown before a run: how much noise MST adds, in rows, against the counts.

MST's noise does not depend on the data: with ``d`` columns, the Gaussian noise on each
1-way marginal has ``sigma1 = sqrt(d / (2 rho/3))`` rows per bin and on each 2-way marginal
``sigma2 = sqrt((d-1) / (2 rho/3))`` rows per cell. What it is compared with does: the
table's row count ``n`` spread over a column's bins (``n / bins``) or a pair's cells. A
column whose average bin holds fewer than 3 sigma1 rows has most of its bins merged (the
compression threshold), so its shape is mostly noise. The plan uses the real row count:
it is for the data owner only, like the report.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from . import privacy
from .domain import TableDomain

#: A bin whose count is below this many sigmas is merged (the same as `mst.COMPRESS_SIGMAS`).
MERGE_SIGMAS = 3.0


@dataclass(frozen=True)
class Plan:
    """The noise of a run and what it means for this table."""

    rows: int
    epsilon: float
    delta: float
    sigma1: float
    sigma2: float
    bins: dict[str, int]
    #: columns whose average bin holds fewer rows than the merge threshold
    swamped: list[str]
    #: pairs whose average cell holds fewer rows than sigma2
    noisy_pairs: list[tuple[str, str]]
    #: the smallest epsilon at which nothing is swamped
    epsilon_needed: float
    #: the most bins a column can have at this epsilon without being swamped
    max_bins: int

    @property
    def refused(self) -> bool:
        """Half the columns or more swamped: the output would be mostly noise."""
        return 2 * len(self.swamped) >= len(self.bins)

    @property
    def warned(self) -> bool:
        return bool(self.swamped or self.noisy_pairs)

    #: what a pair's average cell is compared with, in its warning
    pair_noise = "the noise"

    def lines(self) -> list[str]:
        """The plan as text for the console: what the run measures, then the warnings."""
        return self.head() + self.warning_lines()

    def head(self) -> list[str]:
        """The rows, the budget and the noise the run's measurements get."""
        return [
            f"plan: {self.rows} input rows (not private), {len(self.bins)} columns, epsilon "
            f"{self.epsilon:g}, delta {self.delta:g}",
            f"  noise per measured marginal: {self.sigma1:.3g} rows per bin (1-way, every "
            f"column), {self.sigma2:.3g} rows per cell (2-way, {len(self.bins) - 1} "
            f"pair{'s' if len(self.bins) > 2 else ''}); "
            f"bins with under {MERGE_SIGMAS * self.sigma1:.3g} rows are merged",
        ]

    def swamped_reason(self) -> str:
        """Why a swamped column's shape is lost, after its average bin."""
        return (
            f"under the merge threshold {MERGE_SIGMAS * self.sigma1:.3g}: its shape will be "
            "mostly noise"
        )

    def warning_lines(self) -> list[str]:
        """A line per swamped column and noisy pair (five at most), then what would do."""
        out = []
        for name in self.swamped:
            average = self.rows / self.bins[name]
            out.append(
                f"  warning: column {name!r}: {self.bins[name]} bins of {average:.3g} rows on "
                f"average, {self.swamped_reason()}"
            )
        for a, b in self.noisy_pairs[:5]:
            cells = self.bins[a] * self.bins[b]
            out.append(
                f"  warning: pair {a}-{b}: {cells} cells of {self.rows / cells:.3g} rows on "
                f"average, under {self.pair_noise} {self.sigma2:.3g}"
            )
        if len(self.noisy_pairs) > 5:
            out.append(f"  ... and {len(self.noisy_pairs) - 5} more such pairs")
        if self.warned:
            advice = f"  suggestion: epsilon {self.epsilon_needed:.2g} or more"
            if self.swamped and self.max_bins >= 2:
                advice += (
                    f", or at most {self.max_bins} bins in "
                    + ", ".join(repr(n) for n in self.swamped)
                    + f" at epsilon {self.epsilon:g}"
                )
            out.append(advice)
        return out


def _round_up(value: float) -> float:
    """Up to two significant digits, rounded up (a suggestion must be enough)."""
    if value <= 0:
        return value
    step = 10 ** (math.floor(math.log10(value)) - 1)
    return math.ceil(value / step - 1e-9) * step


def make_plan(domain: TableDomain, rows: int, epsilon: float, delta: float) -> Plan:
    """The plan of an MST run over ``domain`` on ``rows`` rows (see the module's doc)."""
    rho = privacy.rho_for(epsilon, delta)
    d = len(domain.columns)
    sigma1 = privacy.gaussian_sigma(rho / 3, d)
    sigma2 = privacy.gaussian_sigma(rho / 3, d - 1)
    bins = {c.name: c.size for c in domain.columns}
    swamped = [n for n, size in bins.items() if size > 1 and rows / size < MERGE_SIGMAS * sigma1]
    pairs = [
        (a, b)
        for a, b in itertools.combinations(domain.names, 2)
        if rows / (bins[a] * bins[b]) < sigma2
    ]
    # the largest sigmas that clear every threshold, and the budget they need
    need1 = min((rows / size for size in bins.values() if size > 1), default=rows) / MERGE_SIGMAS
    need2 = min(rows / (bins[a] * bins[b]) for a, b in itertools.combinations(domain.names, 2))
    rho_needed = 3 * max(d / (2 * need1**2), (d - 1) / (2 * need2**2))
    return Plan(
        rows=rows,
        epsilon=epsilon,
        delta=delta,
        sigma1=sigma1,
        sigma2=sigma2,
        bins=bins,
        swamped=swamped,
        noisy_pairs=pairs,
        epsilon_needed=_round_up(privacy.epsilon_for(rho_needed, delta)),
        max_bins=max(1, math.floor(rows / (MERGE_SIGMAS * sigma1))),
    )
