"""The scaling table of `harness eval --workers`: workers x threads -> wall, sum of invoke, ratio.

    python benchmarks/scaling.py --models mb3-centernet-int8 mb3-centernet-16x8 --configs 1x1 1x2 2x1

Each model is first run with one worker and one interpreter thread: the sum of its invoke times is the
reference `one_thread_invoke_s`. Each configuration WxT is then run with W workers of T threads:
`loop_wall_s` is the eval's wall time once every worker has loaded the model (as a one-worker eval's wall
leaves the model load out; `startup_s`, spawning the workers and loading the model in each, is shown
beside it), `ideal_s` = one_thread_invoke_s / W, `ratio` = loop_wall_s / ideal_s (target <= 1.15), and
`loop_over_invoke` is the largest worker's loop time over its own invoke time (target <= 1.1).
benchmarks/test_bench_workers.py asserts both targets; this script prints the table and, with `--out FILE`,
writes it as a receipts artifact (benchmarks/receipts.py) that the docs' scaling table is rendered from.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from receipts import start, write_artifact

from harness.common.cores import available_cores
from harness.common.summary import table
from harness.measure.evaluate import evaluate
from harness.models.backends import BackendOptions
from harness.models.mirror import Mirror
from harness.models.zoo import get_card
from harness.scoring.coco import CocoGroundTruth

RATIO_TARGET = 1.15
LOOP_TARGET = 1.1


def eval_once(mirror: Path, model: str, workers: int, threads: int, images: int | None) -> dict:
    """One eval (no bootstrap, no progress bar) in a scratch directory; its record."""
    m = Mirror(mirror)
    gt = CocoGroundTruth(m.val_annotations, m.val_images)
    with tempfile.TemporaryDirectory(prefix="harness-scaling-") as out:
        return evaluate(model, get_card(model), m, gt, BackendOptions(threads=threads), max_images=images,
                        output=Path(out), progress=False, ci_resamples=0, workers=workers)


def row(model: str, workers: int, threads: int, record: dict, one_thread_invoke_s: float) -> dict:
    par, timing = record["parallel"], record["timing"]
    loop_wall = timing["wall_s"] - par.get("startup_s", 0.0)
    ideal = one_thread_invoke_s / workers
    per_worker = par.get("loop_over_model_per_worker") or [timing["wall_s"] / timing["model_s"]]
    return {"model": model, "workers": workers, "threads": threads, "images": timing["images"],
            "loop_wall_s": loop_wall, "startup_s": par.get("startup_s", 0.0), "invoke_sum_s": timing["model_s"],
            "one_thread_invoke_s": one_thread_invoke_s, "ideal_s": ideal, "ratio": loop_wall / ideal,
            "loop_over_invoke": max(per_worker), "AP": record["results"]["stats"]["AP"]}


def scaling_table(mirror: Path, model: str, configs: list[tuple[int, int]], images: int | None) -> list[dict]:
    """The reference run (1 worker, 1 thread), then each configuration, rows in that order."""
    ref = eval_once(mirror, model, 1, 1, images)
    one_thread = ref["timing"]["model_s"]
    return [row(model, 1, 1, ref, one_thread)] + [
        row(model, w, t, eval_once(mirror, model, w, t, images), one_thread) for w, t in configs]


def print_rows(rows: list[dict]) -> None:
    cols = ["model", "workers", "threads", "images", "loop_wall_s", "startup_s", "invoke_sum_s",
            "one_thread_invoke_s", "ratio", "loop_over_invoke"]
    print(table(cols, [[r[c] for c in cols] for r in rows]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mirror", default=os.environ.get("HARNESS_MIRROR") or "../shared/mirror")
    p.add_argument("--models", nargs="+", default=["mb3-centernet-int8", "mb3-centernet-16x8"])
    n = available_cores()
    p.add_argument("--configs", nargs="+", default=[f"1x{n}", f"{n}x1"], metavar="WxT",
                   help=f"workers x threads (default: 1x{n} {n}x1 on this {n}-core machine)")
    p.add_argument("--images", type=int, help="the first N images (default: all the mirror's 159)")
    p.add_argument("--out", help="write the rows as an artifact, e.g. benchmarks/results/scaling.json (default: none)")
    args = p.parse_args(argv)
    configs = [tuple(int(v) for v in c.split("x")) for c in args.configs]
    provenance, t0 = start(sys.argv if argv is None else [__file__, *argv]), time.perf_counter()
    rows = [r for m in args.models for r in scaling_table(Path(args.mirror), m, configs, args.images)]  # type: ignore[arg-type]
    print_rows(rows)
    if args.out:
        write_artifact(args.out, "scaling", provenance, rows, time.perf_counter() - t0)
    print(f"ratio = loop_wall_s / (one_thread_invoke_s / workers), target <= {RATIO_TARGET}; "
          f"loop_over_invoke target <= {LOOP_TARGET}; {n} cores; startup_s is not in loop_wall_s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
