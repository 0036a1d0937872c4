"""Change points in a series of measurements: E-divisive means with a rank test, split then merge.

Which commit moved a board's latency is a question about the whole history, not about the newest run: a
threshold on the newest run against a window of earlier ones sees a step only while it is new, and never
sees where a slow drift began. E-divisive means (Matteson and James, "A nonparametric approach for multiple
change point analysis of multivariate data", JASA 2014) puts a split where the energy distance between the
two sides is largest; the two-step scheme of Fleming et al. ("Hunter: using change point detection to hunt
for performance regressions", ICPE 2023; Apache Otava, MongoDB's CI) first collects candidate splits at a
looser significance level and then removes, weakest first, those that are not significant against their
neighbouring segments at the level asked for.

This module is that scheme with one change: each split is tested with a two-sided Mann-Whitney U test of the
two segments (harness.analyse.check.mann_whitney_greater) instead of Student's t-test. Run p50s on a shared
runner have outliers and skew (one run on a busy spell), which inflate a t-test's variance and can also fake
a mean shift; ranks are untouched by them. benchmarks/change_points.py measures both this and Otava on the
same series built from this machine's bench noise. numpy only: a board or a CI step needs no scipy.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_PVALUE = 0.001  # the significance a change point must reach (Otava's default)
FIRST_PASS = 10.0  # the split step collects candidates at FIRST_PASS x MAX_PVALUE, as Hunter does
MIN_SIZE = 3  # fewest runs on each side of a split: with fewer, no rank test reaches 0.001


@dataclass(frozen=True)
class ChangePoint:
    """Run `index` is the first after the change; `before` and `after` are the medians of the segments
    either side (bounded by the neighbouring change points); `pvalue` the test of those two segments."""

    index: int
    pvalue: float
    before: float
    after: float

    @property
    def ratio(self) -> float:
        """after / before: 1.15 is 15% higher (slower, for a latency)."""
        return self.after / self.before if self.before else math.inf


def _split_statistic(x: np.ndarray, min_size: int) -> tuple[int, float]:
    """The split of `x` (index of the first point on the right) that maximises the energy-distance statistic
    Q = m k / (m + k) * (2 E|L-R| - E|L-L'| - E|R-R'|), with at least `min_size` points on each side."""
    n = x.size
    d = np.abs(x[:, None] - x[None, :])
    p = np.zeros((n + 1, n + 1))
    p[1:, 1:] = d.cumsum(0).cumsum(1)  # p[a, b] = sum of d[:a, :b]
    tau = np.arange(min_size, n - min_size + 1)
    if tau.size == 0:
        return -1, 0.0
    m, k = tau.astype(float), (n - tau).astype(float)
    left = p[tau, tau]  # ordered pairs within the left side
    cross = p[tau, n] - left
    right = p[n, n] - left - 2 * cross
    e = 2 * cross / (m * k) - left / np.maximum(m * (m - 1), 1) - right / np.maximum(k * (k - 1), 1)
    q = m * k / (m + k) * e
    best = int(np.argmax(q))
    return int(tau[best]), float(q[best])


EXACT_UP_TO = 10  # the smaller sample size up to which the rank test uses the exact distribution of U


def _u_counts(m: int, n: int) -> np.ndarray:
    """How many of the C(m + n, m) orderings of two untied samples give each U = 0 .. m n: the coefficients of
    the Gaussian binomial [m + n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), built factor by factor
    (each partial product is itself a polynomial of degree i n, so the division is exact)."""
    c = np.zeros(m * n + 1)
    c[0] = 1.0
    for i in range(1, m + 1):
        c[n + i:] -= c[:m * n + 1 - (n + i)].copy()  # times (1 - q^(n+i))
        for k in range(i, m * n + 1):  # divided by (1 - q^i)
            c[k] += c[k - i]
    return c


def two_sided_rank_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value: do a and b differ in location.

    Exact when the smaller sample has at most EXACT_UP_TO values and nothing is tied: the normal approximation
    is far too cautious there (three runs above thirty earlier ones: exact 0.00037, approximation 0.0053), and
    three runs after a step are what a gate has soon after it. Otherwise the tie-corrected normal approximation.
    """
    from harness.analyse.check import mann_whitney_greater

    if a.size == 0 or b.size == 0:
        return 1.0
    both = np.concatenate([a, b])
    if min(a.size, b.size) <= EXACT_UP_TO and np.unique(both).size == both.size:
        u = int(np.sum(a[:, None] > b[None, :]))
        counts = _u_counts(min(a.size, b.size), max(a.size, b.size))
        total = counts.sum()
        return float(min(1.0, 2.0 * min(counts[u:].sum(), counts[:u + 1].sum()) / total))
    return min(1.0, 2.0 * min(mann_whitney_greater(a, b), mann_whitney_greater(b, a)))


def _change(x: np.ndarray, lo: int, at: int, hi: int) -> ChangePoint:
    left, right = x[lo:at], x[at:hi]
    return ChangePoint(at, two_sided_rank_p(right, left), float(np.median(left)), float(np.median(right)))


def _bounds(points: Sequence[int], n: int) -> list[int]:
    return [0, *points, n]


def detect(values: Sequence[float], max_pvalue: float = MAX_PVALUE, min_size: int = MIN_SIZE) -> list[ChangePoint]:
    """Change points of `values` (in commit order), each significant at `max_pvalue` against its neighbours."""
    x = np.asarray(values, float)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise ValueError("change points need a one-dimensional series of finite numbers")
    if not 0 < max_pvalue < 1:
        raise ValueError(f"max_pvalue must be in (0, 1), got {max_pvalue}")
    points = _split(x, min(0.5, max_pvalue * FIRST_PASS), min_size)
    return _merge(x, points, max_pvalue)


def _split(x: np.ndarray, level: float, min_size: int) -> list[int]:
    """Split the segment with the strongest candidate while the candidate's test passes `level`."""
    points: list[int] = []
    closed: set[tuple[int, int]] = set()  # segments whose best split was not significant
    while True:
        best: tuple[float, int, int, int] | None = None
        bounds = _bounds(points, x.size)
        for lo, hi in itertools.pairwise(bounds):
            if (lo, hi) in closed or hi - lo < 2 * min_size:
                continue
            at, q = _split_statistic(x[lo:hi], min_size)
            if at > 0 and (best is None or q > best[0]):
                best = (q, lo + at, lo, hi)
        if best is None:
            return points
        _, at, lo, hi = best
        if _change(x, lo, at, hi).pvalue < level:
            points = sorted([*points, at])
        else:
            closed.add((lo, hi))


def _merge(x: np.ndarray, points: list[int], max_pvalue: float) -> list[ChangePoint]:
    """Drop the weakest change point while one is not significant against its neighbouring segments."""
    while True:
        bounds = _bounds(points, x.size)
        changes = [_change(x, bounds[i], bounds[i + 1], bounds[i + 2]) for i in range(len(points))]
        weakest = max(range(len(changes)), key=lambda i: changes[i].pvalue, default=None)
        if weakest is None or changes[weakest].pvalue < max_pvalue:
            return changes
        del points[weakest]
