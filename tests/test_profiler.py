"""The profiler's stopping rule and statistics, pinned with a fake clock and known samples."""

from __future__ import annotations

import numpy as np
import pytest

from harness.measure.profiler import StopRule, outlier_warning, percentile, run_until, summarize


class FakeClock:
    """A clock that only moves when a step says how long it took."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def step(self, duration: float):
        def run(i: int) -> float:
            self.now += duration
            return duration

        return run


def test_steady_state_needs_both_min_count_and_min_duration():
    clock = FakeClock()
    # 0.25 s per sample: 10 samples reach the count at 2.5 s, but 5 s are needed -> 20 samples.
    samples = run_until(clock.step(0.25), StopRule(min_count=10, min_duration_s=5.0, max_duration_s=60), clock)
    assert len(samples) == 20
    clock = FakeClock()
    # 1 s per sample: the duration is reached at 5 samples, but 10 are needed.
    samples = run_until(clock.step(1.0), StopRule(min_count=10, min_duration_s=5.0, max_duration_s=60), clock)
    assert len(samples) == 10


def test_max_duration_stops_a_slow_model_before_min_count():
    clock = FakeClock()
    samples = run_until(clock.step(2.0), StopRule(min_count=100, min_duration_s=1.0, max_duration_s=10.0), clock)
    assert len(samples) == 5  # 10 s of 2 s samples, far from 100


def test_every_raw_sample_is_kept_in_order():
    clock = FakeClock()
    durations = [0.3, 0.1, 0.2, 5.0, 0.1]

    def step(i: int) -> float:
        clock.now += durations[i]
        return durations[i]

    assert run_until(step, StopRule(min_count=5, min_duration_s=0, max_duration_s=100), clock) == durations


def test_percentiles_of_known_samples_keep_the_tail():
    samples = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(samples, 50) == pytest.approx(50.5)
    assert percentile(samples, 90) == pytest.approx(90.1)
    assert percentile(samples, 99) == pytest.approx(99.01)
    s = summarize([0.01] * 98 + [1.0, 2.0])  # two huge outliers: not clipped
    assert s["max_s"] == 2.0
    assert s["p99_s"] == pytest.approx(np.percentile([0.01] * 98 + [1.0, 2.0], 99))
    assert s["p99_s"] > 0.9
    assert s["count"] == 100
    assert s["mean_s"] == pytest.approx((0.98 + 3.0) / 100)
    assert s["throughput_per_s"] == pytest.approx(100 / 3.98)
    assert s["outliers"] == 2


def test_summary_fields_of_a_plain_sample():
    s = summarize([0.010, 0.012, 0.011, 0.013])
    assert s["min_s"] == 0.010 and s["max_s"] == 0.013
    assert s["std_s"] == pytest.approx(np.std([0.010, 0.012, 0.011, 0.013], ddof=1))
    assert s["outliers"] == 0
    assert outlier_warning("model", s) is None


def test_outliers_are_warned_about_not_dropped():
    s = summarize([0.01] * 50 + [0.5] * 3)
    assert s["count"] == 53
    msg = outlier_warning("model-only", s)
    assert msg and "3 of 53" in msg and "kept" in msg
