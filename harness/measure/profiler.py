"""Latency phases and statistics, measured the same way on every host.

Phases follow TFLite's benchmark_model (load, first inference, warm-up, steady state); the steady state
runs until both a minimum count and a minimum duration are reached, or a maximum duration passes
(MLPerf LoadGen's rule). Every raw sample is kept and percentiles are taken on all of them: the tail
is never clipped. Outliers are counted and warned about (hyperfine), never dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

Clock = Callable[[], float]


@dataclass(frozen=True)
class StopRule:
    """When a measured phase ends: min_count AND min_duration_s reached, or max_duration_s passed."""

    min_count: int = 50
    min_duration_s: float = 5.0
    max_duration_s: float = 60.0

    def done(self, count: int, elapsed_s: float) -> bool:
        if elapsed_s >= self.max_duration_s:
            return True
        return count >= self.min_count and elapsed_s >= self.min_duration_s

    def to_dict(self) -> dict:
        return asdict(self)


def run_until(step: Callable[[int], float], rule: StopRule, clock: Clock = time.perf_counter) -> list[float]:
    """Call `step(i)` (which returns its own duration in seconds) until `rule` says stop; all samples."""
    samples: list[float] = []
    start = clock()
    while True:
        samples.append(step(len(samples)))
        if rule.done(len(samples), clock() - start):
            return samples


def timed(fn: Callable[[], object], clock: Clock = time.perf_counter) -> float:
    t0 = clock()
    fn()
    return clock() - t0


def percentile(samples: Sequence[float] | np.ndarray, q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default)."""
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q))


def summarize(samples: Sequence[float]) -> dict:
    """p50/p90/p99, mean, std, min, max, throughput and outlier count of raw samples (seconds), and the
    spread a dashboard draws as the run's noise band (p10, p25, p75)."""
    a = np.asarray(samples, dtype=np.float64)
    if a.size == 0:
        return {"count": 0}
    q1, q3 = np.percentile(a, [25, 75])
    fence = q3 + 3.0 * (q3 - q1)  # "far out" values by Tukey's rule
    return {
        "count": int(a.size),
        "p50_s": percentile(a, 50), "p90_s": percentile(a, 90), "p99_s": percentile(a, 99),
        "p10_s": percentile(a, 10), "p25_s": float(q1), "p75_s": float(q3),
        "mean_s": float(a.mean()), "std_s": float(a.std(ddof=1)) if a.size > 1 else 0.0,
        "min_s": float(a.min()), "max_s": float(a.max()),
        "total_s": float(a.sum()),
        "throughput_per_s": float(a.size / a.sum()) if a.sum() > 0 else None,
        "outliers": int((a > fence).sum()),
    }


def outlier_warning(name: str, stats: dict) -> str | None:
    """A hyperfine-style warning when far-out samples are present (other load, throttling)."""
    n, count = stats.get("outliers", 0), stats.get("count", 0)
    if count and n and n / count >= 0.02:
        return (f"warning: {name}: {n} of {count} samples are far above the rest (other load on the host, "
                "thermal throttling?); they are kept in the percentiles")
    return None
