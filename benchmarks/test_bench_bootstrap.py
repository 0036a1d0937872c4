"""Bootstrap intervals on a real model: mb3-centernet f32 over the mirror's 159 val2017 images.

Target: 1000 resamples in <= 10 s (median of 3) on a 2-core machine; pycocotools' matching runs once
before and is timed apart. A second check puts the paired ΔAP of the 16x8 sibling (1.5 s per image, so
on a subset) beside the unpaired one.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.models.pipeline import Pipeline
from harness.models.zoo import get_card
from harness.scoring.bootstrap import bootstrap, match_once, paired_delta
from harness.scoring.coco import CocoGroundTruth, to_results

RESAMPLES, TARGET_S = 1000, 10.0
SIBLING_IMAGES = 40  # the 16x8 model takes ~1.5 s per image here


def detect(mirror: Path, gt: CocoGroundTruth, model: str, count: int | None = None) -> list[dict]:
    """Run a zoo model through the harness over the first `count` images; official results entries."""
    pipe = Pipeline.open(get_card(model), mirror)
    results = []
    for info in gt.images[:count]:
        results += to_results(info, pipe.detect(pipe.read(gt.image_path(info))))
    return results


@pytest.fixture(scope="session")
def gt(mirror: Path) -> CocoGroundTruth:
    return CocoGroundTruth(mirror / "coco" / "annotations" / "instances_val2017.json", mirror / "coco" / "val2017")


@pytest.fixture(scope="session")
def f32_results(mirror: Path, gt: CocoGroundTruth) -> list[dict]:
    return detect(mirror, gt, "mb3-centernet-f32")


def test_bootstrap_1000_resamples(benchmark, gt, f32_results) -> None:
    t0 = time.perf_counter()
    matches = match_once(gt, f32_results)
    match_s = time.perf_counter() - t0
    assert matches.n_images == 159
    result = benchmark.pedantic(bootstrap, args=(matches,), kwargs={"resamples": RESAMPLES, "per_class": True},
                                rounds=3, iterations=1)
    median = benchmark.stats.stats.median
    rows = {k: [round(100 * result[k][f], 2) for f in ("point", "lo", "hi")] for k in ("AP", "AP50", "AP75",
                                                                                        "APs", "APm", "APl")}
    benchmark.extra_info.update({"match_once_s": match_s, "resamples": RESAMPLES, "target_s": TARGET_S,
                                 "intervals_points": rows})
    print(f"\nmatch_once {match_s:.1f} s; {RESAMPLES} resamples median {median:.2f} s; "
          f"95% {result['method']} intervals (points): {rows}")
    assert result["AP"]["lo"] < result["AP"]["point"] < result["AP"]["hi"]
    assert median <= TARGET_S


def test_paired_delta_16x8_vs_f32(benchmark, mirror, gt, f32_results) -> None:
    ids = [i.id for i in gt.images[:SIBLING_IMAGES]]
    sibling = detect(mirror, gt, "mb3-centernet-16x8", SIBLING_IMAGES)
    a = match_once(gt, [r for r in f32_results if r["image_id"] in set(ids)], ids)
    b = match_once(gt, sibling, ids)
    d = benchmark.pedantic(paired_delta, args=(a, b), kwargs={"resamples": RESAMPLES}, rounds=1, iterations=1)
    ap = d["AP"]
    paired = 100 * (ap["hi"] - ap["lo"])
    unpaired = 100 * (ap["unpaired"]["hi"] - ap["unpaired"]["lo"])
    separate = [100 * (d[m]["AP"]["hi"] - d[m]["AP"]["lo"]) for m in ("a", "b")]
    benchmark.extra_info.update({"images": SIBLING_IMAGES, "delta_points": 100 * ap["point"],
                                 "paired_width": paired, "unpaired_width": unpaired, "separate_widths": separate})
    print(f"\n{SIBLING_IMAGES} images: ΔAP (16x8 - f32) {100 * ap['point']:+.2f} points, paired 95% "
          f"[{100 * ap['lo']:+.2f}, {100 * ap['hi']:+.2f}] (width {paired:.2f}); unpaired width {unpaired:.2f}; "
          f"f32 / 16x8 intervals {separate[0]:.2f} / {separate[1]:.2f}; {unpaired / paired:.1f}x narrower")
    assert paired < unpaired
