"""Intervals that hold their point, and the paired ΔAP interval's coverage by simulation.

The AP interval's own coverage is tests/test_bootstrap.py::test_interval_coverage; the full measurements
behind both tests here are benchmarks/interval_point.py and benchmarks/paired_coverage.py (their JSON under
benchmarks/results/).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from synthetic_sets import degraded, weak_detector_set
from test_bootstrap import FULL_SET, synthetic_set

from harness.scoring.accumulate import STAT_KEYS, fast_stats
from harness.scoring.bootstrap import METHODS, ap_from_weights, bootstrap, match_once, paired_delta, resample_weights


def test_an_interval_holds_its_point_where_the_bias_exceeds_two_standard_errors(tmp_path: Path) -> None:
    """A weak detector over 200 classes on 1,000 images: AP a few points, and the bootstrap's replicates lie
    above the point more than 97.5% of the time (each class's precision envelope is biased upward; the
    biases add across classes while the noise averages down). The reflected upper end 2 * point - q(2.5%)
    then falls below the point (the issue's AP 0.03611 outside [0.03308, 0.03580], reproduced on a smaller
    set); every method's interval must still hold its point."""
    gt, results = weak_detector_set(1000, tmp_path / "weak.json", dets=30, classes=200, zipf=0.3)
    m = match_once(gt, results)
    reps = fast_stats(m, resample_weights(m.n_images, 200, seed=0))[0]
    point = ap_from_weights(m)["AP"]
    assert 0.02 < point < 0.08
    assert np.mean(reps[:, 0] > point) > 0.975  # the failure's condition holds on this set
    assert 2 * point - np.quantile(reps[:, 0], 0.025) < point  # so the reflected end lies below the point
    for method in METHODS:
        b = bootstrap(m, resamples=200, seed=0, method=method)
        for k in STAT_KEYS:
            s = b[k]
            if np.isnan(s["point"]):
                continue
            assert s["lo"] <= s["point"] <= s["hi"], (method, k, s)
        ap = b["AP"]
        assert ap["bias"] / ap["se"] > 2, ap  # recorded beside se: why the interval is lopsided
        if method.startswith("basic"):
            assert ap["hi"] == ap["point"] and ap["lo"] < ap["point"] - 2 * ap["se"]


# (subset size, subsets drawn, resamples each): small enough for the suite; the benchmark draws more.
PAIRED_PLAN = ((100, 200, 150), (300, 80, 150))
PAIRED_BAND = (0.90, 0.995)  # around the nominal 0.95: binomial se 1.5 / 2.4 points at these counts


def test_paired_delta_coverage(tmp_path: Path) -> None:
    """95% paired ΔAP intervals (the default method, "basic") from random subsets of the 5,000-image
    synthetic set cover the full-set ΔAP of a degraded sibling (boxes jittered by 5% of their size, score
    logits by N(0, 0.3) per detection and N(0, 0.2) per image: ΔAP about -2 points) within the band at
    each subset size, and a degraded model's drop is never called a gain.

    benchmarks/paired_coverage.py (300 / 150 / 40 subsets of 100 / 300 / 1000 images, 200 resamples, and a
    near-twin sibling) measured: see benchmarks/results/paired_coverage.json.
    """
    t0 = time.perf_counter()
    gt, a = synthetic_set(FULL_SET, seed=0, path=tmp_path / "instances_synthetic.json")
    ma = match_once(gt, a)
    mb = match_once(gt, degraded(a, seed=1, jitter=0.05, score_noise=0.3, image_effect=0.2))
    truth = ap_from_weights(mb)["AP"] - ap_from_weights(ma)["AP"]
    assert -0.04 < truth < -0.01
    rng = np.random.default_rng(1)
    coverage, below, gains = {}, {}, 0
    for size, subsets, resamples in PAIRED_PLAN:
        hits = low = 0
        for trial in range(subsets):
            ids = rng.choice(ma.image_ids, size, replace=False)
            d = paired_delta(ma.restrict(ids), mb.restrict(ids), resamples=resamples, seed=trial)
            assert d["method"] == "basic"
            s = d["AP"]
            assert s["lo"] <= s["point"] <= s["hi"]
            hits += s["lo"] <= truth <= s["hi"]
            low += truth < s["lo"]
            gains += s["lo"] > 0
        coverage[size], below[size] = hits / subsets, low / subsets
    print(f"\ntrue ΔAP {truth:+.4f}; coverage {coverage}; truth below the interval {below}; "
          f"{time.perf_counter() - t0:.0f} s")
    for size, cov in coverage.items():
        assert PAIRED_BAND[0] <= cov <= PAIRED_BAND[1], (size, coverage)
    assert gains == 0


def test_on_the_5000_image_sets_every_interval_holds_its_point_by_the_committed_artifact():
    """The issue's 5000-image, 500k-detection case, too slow for the suite: benchmarks/interval_point.py
    measured it into benchmarks/results/interval_point.json. The artifact must show the failure it was made to
    catch (the unclamped interval missing its point) and every interval of the harness holding its point."""
    import json
    from pathlib import Path

    artifact = json.loads((Path(__file__).resolve().parents[1] / "benchmarks/results/interval_point.json").read_text())
    sets = artifact["data"]["sets"]
    assert all(s["images"] == 5000 and s["detections"] == 500_000 for s in sets.values())
    assert any(not m["before_contained_point"] for s in sets.values() for m in s["methods"].values())
    for name, s in sets.items():
        for method, m in s["methods"].items():
            assert m["lo"] <= m["point"] <= m["hi"], f"{name} {method}: [{m['lo']}, {m['hi']}] vs {m['point']}"
