"""Coverage of the paired ΔAP interval (`paired_delta`), measured by simulation.

    PYTHONPATH=. python benchmarks/paired_coverage.py --out benchmarks/results/paired_coverage.json

The population is tests/test_bootstrap.py's 5,000-image synthetic set (the one the AP interval's coverage
is measured on) scored as model A, and a sibling B derived from A's results on the same images
(tests/synthetic_sets.py `degraded`: boxes jittered, score logits perturbed per detection and per image),
so the true ΔAP = AP_B - AP_A over the 5,000 images is known. Random subsets of 100 / 300 / 1000 images
are drawn without replacement; each gets the paired interval (the default method, "basic", and
"basic-widened" for comparison), and coverage is the share of intervals that hold the true ΔAP.
Two siblings: a clear drop (what `--max-drop` / `--confidence` should catch) and a near-twin whose ΔAP
is a fraction of a point (where the doctor's no-false-alarm rule lives).
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
from synthetic_sets import degraded  # noqa: E402
from test_bootstrap import FULL_SET, synthetic_set  # noqa: E402

from harness.scoring.bootstrap import ap_from_weights, match_once, paired_delta  # noqa: E402

SIBLINGS = {"drop": {"jitter": 0.05, "score_noise": 0.3, "image_effect": 0.2},
            "near-twin": {"jitter": 0.01, "score_noise": 0.05, "image_effect": 0.05}}
METHODS = ("basic", "basic-widened")


def measure(plan: list[tuple[int, int]], resamples: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        gt, a = synthetic_set(FULL_SET, seed=0, path=Path(tmp) / "instances_synthetic.json")
    ma = match_once(gt, a)
    ap_a = ap_from_weights(ma)["AP"]
    out = {}
    for name, knobs in SIBLINGS.items():
        mb = match_once(gt, degraded(a, seed=seed, **knobs))
        truth = ap_from_weights(mb)["AP"] - ap_a
        rows = []
        rng = np.random.default_rng(seed)
        for size, subsets in plan:
            t0 = time.perf_counter()
            hit = {m: 0 for m in METHODS}
            below = {m: 0 for m in METHODS}
            width = {m: [] for m in METHODS}
            points = []
            for trial in range(subsets):
                ids = rng.choice(ma.image_ids, size, replace=False)
                sa, sb = ma.restrict(ids), mb.restrict(ids)
                for m in METHODS:
                    d = paired_delta(sa, sb, resamples=resamples, seed=trial, method=m)["AP"]
                    hit[m] += d["lo"] <= truth <= d["hi"]
                    below[m] += truth < d["lo"]
                    width[m].append(d["hi"] - d["lo"])
                points.append(d["point"])
            row = {"images": size, "subsets": subsets, "resamples": resamples,
                   "mean_point": float(np.mean(points)), "sd_point": float(np.std(points, ddof=1)),
                   "seconds": round(time.perf_counter() - t0, 1)}
            for m in METHODS:
                cov = hit[m] / subsets
                row[m] = {"coverage": cov, "binomial_se": float(np.sqrt(cov * (1 - cov) / subsets)),
                          "truth_below": below[m] / subsets, "truth_above": (subsets - hit[m] - below[m]) / subsets,
                          "mean_width": float(np.mean(width[m]))}
            rows.append(row)
            print(f"{name}: true dAP {truth:+.4f}; {size} images x {subsets}: "
                  + ", ".join(f"{m} {100 * row[m]['coverage']:.1f}%" for m in METHODS) + f" ({row['seconds']} s)",
                  flush=True)
        out[name] = {"sibling": knobs, "ap_a": ap_a, "true_delta_ap": truth, "rows": rows}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "paired_coverage.json"),
                   help="where the measurement is written (default: benchmarks/results/paired_coverage.json)")
    p.add_argument("--resamples", type=int, default=300, help="bootstrap resamples per interval (default: 300)")
    p.add_argument("--subsets", type=int, nargs=3, default=[600, 300, 100],
                   help="subsets of 100, 300 and 1000 images (default: 600 300 100)")
    p.add_argument("--seed", type=int, default=1, help="seed of the sibling and of the subsets (default: 1)")
    args = p.parse_args()
    provenance = receipts.start(sys.argv)
    begun = time.perf_counter()
    plan = list(zip((100, 300, 1000), args.subsets, strict=True))
    t0 = time.perf_counter()
    result = {"what": __doc__.split("\n\n")[2].replace("\n", " "), "level": 0.95, "population_images": FULL_SET,
              "seed": args.seed, "scenarios": measure(plan, args.resamples, args.seed),
              "seconds": round(time.perf_counter() - t0, 1)}
    receipts.write_artifact(args.out, "paired_coverage", provenance, result, round(time.perf_counter() - begun, 1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
