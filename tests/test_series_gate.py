"""The latency series gate: newest bench vs the median of the last K runs on one host, outside the noise band.

Each run's samples are three values repeated (p50 = the middle one exactly), so the medians, the MAD
and the noise band below are hand arithmetic.
"""

from __future__ import annotations

import pytest
from fake_records import bench_record

from harness.analyse.check import gate_latency, run_gates
from harness.errors import HarnessError
from harness.measure.profiler import summarize


def _run(p50: float, day: int, spread: float = 0.01) -> dict:
    samples = [p50 * (1 - spread), p50, p50 * (1 + spread)] * 20
    return bench_record("mb3-centernet-int8", samples, created=f"2026-11-{day:02d}")


def _history(*p50s: float) -> list[dict]:
    return [_run(m, i + 1) for i, m in enumerate(p50s)]


def test_one_fast_earlier_run_no_longer_fails_an_unchanged_build():
    # The run just before the newest hit a fast spell (80 ms); the newest is back at the usual 100 ms.
    runs = [*_history(0.100, 0.102, 0.098, 0.101, 0.080), _run(0.100, 9)]
    (old_rule,) = gate_latency(runs, 1.1, 0.01, history=1)  # against the previous run: 100 / 80 = 1.25
    assert not old_rule.passed
    (found,) = gate_latency(runs, 1.1, 0.01)  # against median(100, 102, 98, 101, 80) = 100 ms: 1.00
    assert found.passed and "ratio 1.000" in found.message and "last 5 runs" in found.message


def test_a_slowdown_inside_the_hosts_noise_band_passes_and_one_outside_fails():
    # p50s 100, 130, 90, 120, 100 ms: median 100, |deviations| 0, 30, 10, 20, 0 -> MAD 10 ms;
    # band = 1 + 3 * 1.4826 * 10 / 100 = 1.445.
    hist = _history(0.100, 0.130, 0.090, 0.120, 0.100)
    (inside,) = gate_latency([*hist, _run(0.130, 9)], 1.1, 0.01)  # 1.30 > 1.1 but < 1.445
    assert inside.passed and "within noise" in inside.message and "noise band 1.445" in inside.message
    (outside,) = gate_latency([*hist, _run(0.160, 9)], 1.1, 0.01)  # 1.60 > 1.445
    assert not outside.passed and "slower" in outside.message


def test_a_real_regression_on_a_quiet_host_fails():
    # p50s 100, 101, 99, 100, 100: MAD 0 ms (three of five deviations are 0) -> band 1.000; 130 / 100 = 1.3.
    (found,) = gate_latency([*_history(0.100, 0.101, 0.099, 0.100, 0.100), _run(0.130, 9)], 1.1, 0.01)
    assert not found.passed and "ratio 1.300" in found.message


def test_with_fewer_than_three_earlier_runs_there_is_no_band():
    # median(100, 120) = 110 ms; 130 / 110 = 1.18 > 1.1, and no band from two runs.
    (found,) = gate_latency([*_history(0.100, 0.120), _run(0.130, 9)], 1.1, 0.01)
    assert not found.passed and "noise band 1.000" in found.message and "last 2 runs" in found.message


def test_only_the_last_k_runs_count():
    # With K=3 the slow early runs (200 ms) drop out: median(100, 100, 100) = 100; 130 / 100 = 1.3 fails.
    runs = [*_history(0.200, 0.200, 0.200, 0.100, 0.100, 0.100), _run(0.130, 9)]
    (found,) = gate_latency(runs, 1.1, 0.01, history=3)
    assert not found.passed
    (wider,) = gate_latency(runs, 1.1, 0.01, history=6)  # median of 200 x3, 100 x3 = 150: faster
    assert wider.passed


def test_history_must_be_positive():
    with pytest.raises(HarnessError, match="--history must be at least 1"):
        run_gates(_history(0.1, 0.1), max_slowdown=1.1, history=0)


def test_each_run_keeps_its_spread():
    # 1..5 ms: p10 = 1 + 0.4 * 1 = 1.4 (linear between ranks), p25 = 2, p75 = 4.
    s = summarize([0.001, 0.002, 0.003, 0.004, 0.005])
    assert (s["p10_s"], s["p25_s"], s["p75_s"]) == pytest.approx((0.0014, 0.002, 0.004))
