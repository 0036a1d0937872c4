"""Does the AP interval contain its point? On a 5,000-image, 500k-detection weak-detector synthetic set.

    PYTHONPATH=. python benchmarks/interval_point.py --out benchmarks/results/interval_point.json

The sets (tests/synthetic_sets.py `weak_detector_set`: 100 detections per image, AP about a point) have the
shape of the results where the issue saw AP 0.03611 outside its own interval [0.03308, 0.03580]: with 300
classes (30% of the boxes found) this generator reproduces it, with COCO's 80 the bias stays under 2 se.
Writes, for each bootstrap method, the interval `bootstrap` gives now and the ends the reflection gave
before an interval was made to hold its point (recomputed here from the same replicates), with the
bootstrap's bias (mean replicate - point) in standard errors, which is what pushes the reflected ends
past the point.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import receipts  # noqa: E402  (benchmarks/receipts.py: the artifact's provenance)
from synthetic_sets import weak_detector_set  # noqa: E402

from harness.scoring.accumulate import fast_stats  # noqa: E402
from harness.scoring.bootstrap import METHODS, bootstrap, match_once, resample_weights  # noqa: E402


def unclamped(point: float, reps: np.ndarray, level: float, method: str) -> list[float] | None:
    """The ends before they were brought back to the point (percentile, basic, basic-widened)."""
    a = (1 - level) / 2
    q_lo, q_hi = np.quantile(reps, [a, 1 - a])
    if method == "percentile":
        return [float(q_lo), float(q_hi)]
    lo, hi = 2 * point - q_hi, 2 * point - q_lo
    if method == "basic-widened":
        bias = float(reps.mean()) - point
        lo, hi = (lo - bias, hi) if bias > 0 else (lo, hi - bias)
    return [float(lo), float(hi)] if method in ("basic", "basic-widened") else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "interval_point.json"),
                   help="where the measurement is written (default: benchmarks/results/interval_point.json)")
    p.add_argument("--images", type=int, default=5000, help="images in the set (default: 5000)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default: 1000, eval's)")
    args = p.parse_args()
    provenance = receipts.start(sys.argv)
    begun = time.perf_counter()
    sets = {name: measure(args.images, args.resamples, **knobs) for name, knobs in SETS.items()}
    out = {"what": " ".join(__doc__.split("\n\n")[1].split()), "resamples": args.resamples, "level": 0.95,
           "sets": sets}
    receipts.write_artifact(args.out, "interval_point", provenance, out, round(time.perf_counter() - begun, 1))
    print(f"wrote {args.out}")
    return 0


SETS = {"300 classes": {"classes": 300, "zipf": 0.3, "found": 0.3},
        "80 classes": {"classes": 80, "zipf": 0.7, "found": 0.3}}


def measure(images: int, resamples: int, **knobs: float) -> dict:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        gt, results = weak_detector_set(images, Path(tmp) / "instances_weak.json", **knobs)
        m = match_once(gt, results)
    t_match = time.perf_counter() - t0
    reps = fast_stats(m, resample_weights(m.n_images, resamples, 0))[0][:, 0]
    rows = {}
    for method in METHODS[:3]:  # BCa's jackknife is 5,000 more accumulations here
        t1 = time.perf_counter()
        ap = bootstrap(m, resamples=resamples, seed=0, method=method)["AP"]
        before = unclamped(ap["point"], reps, 0.95, method)
        rows[method] = {"point": ap["point"], "lo": ap["lo"], "hi": ap["hi"], "se": ap["se"], "bias": ap["bias"],
                        "bias_in_se": ap["bias"] / ap["se"], "contains_point": ap["lo"] <= ap["point"] <= ap["hi"],
                        "before": before,
                        "before_contained_point": None if before is None else before[0] <= ap["point"] <= before[1],
                        "seconds": round(time.perf_counter() - t1, 1)}
        print(f"{method}: AP {ap['point']:.5f} [{ap['lo']:.5f}, {ap['hi']:.5f}]"
              + (f", before [{before[0]:.5f}, {before[1]:.5f}]" if before else "")
              + f"; bias {ap['bias'] / ap['se']:+.2f} se", flush=True)
    print(f"{knobs}: {len(results)} detections, AP {rows['basic']['point']:.5f}", flush=True)
    return {"knobs": knobs, "images": m.n_images, "detections": len(results), "classes": len(m.cat_ids),
            "share_of_replicates_above_point": float(np.mean(reps > rows["basic"]["point"])),
            "match_seconds": round(t_match, 1), "methods": rows}


if __name__ == "__main__":
    raise SystemExit(main())
