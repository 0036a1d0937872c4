"""Full COCO at the speed limit: scoring, intervals, loop overhead and memory on a val2017-sized synthetic set.

    nice -n 5 python benchmarks/full_coco.py --out benchmarks/results/full_coco.json

No download: tests/synthetic_sets.py `coco_shaped_set` draws a seeded set shaped like val2017 (5,000 images,
about 7 boxes an image over COCO's 80 category ids, 100 detections an image). Measured in one run:

- scoring: every exact engine on the same results list, its 12 stats compared with pycocotools' (the
  reference) digit for digit, and its time as a ratio of pycocotools';
- `harness eval --results` without intervals and error types (`--ci-resamples 0 --no-error-types`), as a
  command in its own process: wall time (reading and checking the file included) and peak memory; and the same
  with the TIDE error decomposition (the default), whose cost is reported beside it;
- the interval (1000 resamples: the matching once, then the re-accumulations), as `results_interval` times it;
- the eval loop's own cost per image: `run_detections` with a stand-in executor that hands back each image's
  detections at once (no model, no pixels), the checkpoint written as in a real eval;
- peak memory of the scoring command (with and without intervals) at 1,000 / 2,000 / 5,000 images.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import receipts  # noqa: E402  (benchmarks/receipts.py: the artifact's provenance)
from synthetic_sets import write_coco_shaped  # noqa: E402

ENGINES = ("pycocotools", "faster", "hotcoco", "ultrafast")
TARGETS = {"score_speedup": 20.0, "interval_over_pycocotools": 0.25, "score_peak_mb": 1024.0}


def command(args: list[str]) -> dict:
    """One `harness` command in a fresh interpreter: its wall time and its peak resident memory (MB)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    # VmHWM: this process's own peak (ru_maxrss would start from the forking benchmark's size).
    done = subprocess.run([sys.executable, "-c", "import re, sys\nfrom harness.cli import main\n"
                           "rc = main(sys.argv[1:])\n"
                           "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
                           "print('peak_kb', hwm)\nsys.exit(rc)",
                           *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"harness {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    peak_kb = int(done.stdout.rsplit("peak_kb", 1)[1].split()[0])
    return {"wall_s": round(wall, 3), "peak_mb": round(peak_kb / 1024, 1)}


def scoring(gt_path: Path, res_path: Path) -> dict:
    """Every engine on the same list, timed; stats identical to pycocotools' or the run says which differ."""
    from harness.scoring.coco import CocoGroundTruth
    from harness.scoring.evaluator import STAT_KEYS, score_results

    gt = CocoGroundTruth(gt_path)
    results = json.loads(res_path.read_text())
    ids = [i.id for i in gt.images]
    rows, ref = {}, None
    for engine in ENGINES:
        t0 = time.perf_counter()
        r = score_results(gt, results, ids, engine)
        seconds = time.perf_counter() - t0
        stats = [r.stats[k] for k in STAT_KEYS]
        ref = stats if ref is None else ref
        rows[engine] = {"seconds": round(seconds, 3), "identical": stats == ref, "AP": stats[0]}
    for row in rows.values():
        row["speedup"] = round(rows["pycocotools"]["seconds"] / row["seconds"], 1)
    return {"engines": rows, "detections": len(results), "ground_truth": len(gt.dataset["annotations"])}


def interval(gt_path: Path, res_path: Path, resamples: int) -> dict:
    from harness.scoring.coco import CocoGroundTruth
    from harness.scoring.intervals import results_interval

    gt = CocoGroundTruth(gt_path)
    results = json.loads(res_path.read_text())
    block = results_interval(gt, results, [i.id for i in gt.images], resamples)
    assert block is not None
    return {"seconds": block["seconds"], "resamples": resamples, "AP": block["AP"]}


def headline_rounds(gt_path: Path, res_path: Path, work: Path, resamples: int, rounds: int) -> dict:
    """The three targets' numerators and denominator measured in turn, `rounds` times: pycocotools' scoring,
    `harness eval --results --ci-resamples 0 --no-error-types` (its own process), the interval. The ratios are
    the medians of each round's own ratio, so load that comes and goes between rounds cancels."""
    from harness.scoring.coco import CocoGroundTruth
    from harness.scoring.evaluator import score_results

    gt = CocoGroundTruth(gt_path)
    results = json.loads(res_path.read_text())
    ids = [i.id for i in gt.images]
    rows = []
    for n in range(rounds):
        t0 = time.perf_counter()
        score_results(gt, results, ids, "pycocotools")
        py_s = time.perf_counter() - t0
        cmd = command(["eval", "--results", str(res_path), "--gt", str(gt_path), "--ci-resamples", "0",
                       "--no-error-types", "--json", str(work / f"round{n}.json")])
        iv = interval(gt_path, res_path, resamples)
        rows.append({"pycocotools_s": round(py_s, 3), "score_s": cmd["wall_s"], "interval_s": iv["seconds"],
                     "score_speedup": round(py_s / cmd["wall_s"], 2),
                     "interval_over_pycocotools": round(iv["seconds"] / py_s, 4)})
        print(f"  round {n + 1}: pycocotools {py_s:.1f} s, eval --results {cmd['wall_s']:.2f} s "
              f"({py_s / cmd['wall_s']:.1f}x), interval {iv['seconds']:.1f} s ({iv['seconds'] / py_s:.3f})")
    return {"rounds": rows, **{k: round(float(np.median([r[k] for r in rows])), 3)
                               for k in ("score_speedup", "interval_over_pycocotools", "pycocotools_s", "score_s",
                                         "interval_s")}}


@dataclass
class _StandIn:
    """An executor whose "model" is a lookup: each image's detections from the set, at once."""

    by_image: dict

    def run(self, items):
        from harness.measure.runner import ImageDone

        for index, info, _ in items:
            yield ImageDone(index, info.id, self.by_image.get(info.id, []), 0.0, 0.0, 0.0)

    def describe(self) -> dict:
        return {"executor": "stand-in", "workers": 1}


def loop_overhead(gt_path: Path, res_path: Path, work: Path) -> dict:
    """Seconds per image the eval loop spends beside the model: ordering, checkpoint, results lists."""
    from harness.measure.checkpoint import Checkpoint
    from harness.measure.runner import run_detections
    from harness.scoring.coco import CocoGroundTruth

    gt = CocoGroundTruth(gt_path, work)
    by_image: dict[int, list] = {}
    for r in json.loads(res_path.read_text()):
        by_image.setdefault(r["image_id"], []).append(r)
    checkpoint = Checkpoint(work / "checkpoint.jsonl", {"benchmark": "full_coco"}, restart=True)
    t0 = time.perf_counter()
    _, timing, _ = run_detections(_StandIn(by_image), gt.images, gt.image_path, checkpoint)
    wall = time.perf_counter() - t0
    return {"images": len(gt.images), "wall_s": round(wall, 3), "per_image_ms": round(1000 * wall / len(gt.images), 3),
            "checkpoint_s": round(timing.checkpoint_s, 3)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "full_coco.json"),
                   help="where the measurement is written (default: benchmarks/results/full_coco.json)")
    p.add_argument("--images", type=int, default=5000, help="images in the full set (default: 5000)")
    p.add_argument("--memory-sizes", default="1000,2000", help="smaller sets for the memory table, besides "
                                                                 "--images (default: 1000,2000)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default: 1000, eval's)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the three headline timings "
                                                          "(default: 3; their medians are reported)")
    args = p.parse_args()
    provenance = receipts.start(sys.argv)
    begun = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        sizes = sorted({*(int(s) for s in args.memory_sizes.split(",") if s), args.images})
        sets = {n: write_coco_shaped(Path(tmp) / str(n), n, seed=0) for n in sizes}
        gt_path, res_path = sets[args.images]
        score = scoring(gt_path, res_path)
        print(f"{args.images} images, {score['detections']} detections, {score['ground_truth']} boxes")
        for name, row in score["engines"].items():
            print(f"  {name:12s} {row['seconds']:8.2f} s  {row['speedup']:6.1f}x  identical: {row['identical']}")
        head = headline_rounds(gt_path, res_path, Path(tmp), args.resamples, args.rounds)
        iv = {"seconds": head["interval_s"], "resamples": args.resamples}
        print(f"interval ({args.resamples} resamples) {iv['seconds']:.2f} s = {head['interval_over_pycocotools']:.3f} "
              f"of pycocotools' scoring (medians of {args.rounds} rounds)")
        loop = loop_overhead(gt_path, res_path, Path(tmp) / "loop")
        print(f"eval loop beside the model: {loop['per_image_ms']:.3f} ms an image")
        memory = []
        for n in sizes:
            g, r = sets[n]
            plain = command(["eval", "--results", str(r), "--gt", str(g), "--ci-resamples", "0",
                             "--no-error-types", "--json", str(Path(tmp) / f"score{n}.json")])
            typed = command(["eval", "--results", str(r), "--gt", str(g), "--ci-resamples", "0",
                             "--json", str(Path(tmp) / f"score_errors{n}.json")])
            full = command(["eval", "--results", str(r), "--gt", str(g), "--ci-resamples", str(args.resamples),
                            "--json", str(Path(tmp) / f"score_ci{n}.json")])
            detections = json.loads((Path(tmp) / f"score{n}.json").read_text())["results"]["detection_count"]
            memory.append({"images": n, "detections": detections, "score": plain, "score_with_errors": typed,
                           "score_with_interval": full})
            print(f"  {n:5d} images: harness eval --results {plain['wall_s']:.2f} s, {plain['peak_mb']:.0f} MB; "
                  f"with error types {typed['wall_s']:.2f} s, {typed['peak_mb']:.0f} MB; "
                  f"with the interval {full['wall_s']:.2f} s, {full['peak_mb']:.0f} MB")
    big = memory[-1]
    ratios = {"score_speedup": round(head["score_speedup"], 1),
              "interval_over_pycocotools": round(head["interval_over_pycocotools"], 3),
              "score_peak_mb": big["score"]["peak_mb"]}
    met = {"score_speedup": ratios["score_speedup"] >= TARGETS["score_speedup"],
           "interval_over_pycocotools": ratios["interval_over_pycocotools"] <= TARGETS["interval_over_pycocotools"],
           "score_peak_mb": ratios["score_peak_mb"] <= TARGETS["score_peak_mb"]}
    print(f"harness eval --results: {ratios['score_speedup']}x pycocotools' scoring (target >= 20x); interval "
          f"{ratios['interval_over_pycocotools']} of it (target <= 0.25); peak {ratios['score_peak_mb']} MB "
          f"(target <= 1024)")
    data = {"images": args.images, "resamples": args.resamples, "scoring": score, "interval": iv, "headline": head,
            "loop": loop, "memory": memory, "ratios": ratios, "targets": TARGETS, "met": met,
            "self_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    receipts.write_artifact(args.out, "full_coco", provenance, data, round(time.perf_counter() - begun, 1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
