"""Where a full-COCO eval of mb3-centernet-f32 spends its time here: each stage of the per-image path, timed.

    nice -n 5 python benchmarks/eval_stages.py --out benchmarks/results/eval_stages.json

The eval's per-image path is the runner's (harness.measure.runner.run_images): read (JPEG decoding),
prepare (resize to the model's input), invoke, decode (heads to boxes) and the results entries. Here each
stage runs one after the other in this thread over the mirror's first images, so each gets its own clock
(the eval overlaps reading with invoking on a second thread). The per-image means are extrapolated to
val2017's 5,000 images and set beside scoring and the interval at that scale, from the committed
benchmarks/results/full_coco.json (same machine), to name the stage that now limits a full eval.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import receipts  # noqa: E402

FULL = 5000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "eval_stages.json"),
                   help="where the measurement is written (default: benchmarks/results/eval_stages.json)")
    p.add_argument("--images", type=int, default=100, help="mirror images timed (default: 100)")
    p.add_argument("--model", default="mb3-centernet-f32", help="zoo name (default: mb3-centernet-f32)")
    args = p.parse_args()
    from harness.models.mirror import Mirror
    from harness.models.pipeline import Pipeline
    from harness.models.zoo import get_card
    from harness.scoring.coco import CocoGroundTruth, to_results

    mirror = Mirror(Path(os.environ.get("HARNESS_MIRROR") or REPO.parent / "shared" / "mirror"))
    provenance = receipts.start(sys.argv)
    begun = time.perf_counter()
    card = get_card(args.model)
    pipeline = Pipeline.open(card, mirror.root)
    proto = card.protocol(pipeline.protocol)
    gt = CocoGroundTruth(mirror.val_annotations, mirror.val_images)
    images = gt.images[:args.images]
    clock = time.perf_counter
    totals = dict.fromkeys(("read", "prepare", "invoke", "decode", "results"), 0.0)
    first = gt.image_path(images[0])
    pipeline.predict(pipeline.prepare(pipeline.read(first)).batch)  # warm-up, not counted
    for info in images:
        t0 = clock()
        image = pipeline.read(gt.image_path(info), (info.width, info.height))
        t1 = clock()
        prepared = pipeline.prepare(image)
        t2 = clock()
        heads = pipeline.predict(prepared.batch)
        t3 = clock()
        dets = pipeline.decode(heads, prepared)
        t4 = clock()
        to_results(info, dets, proto.box_convention, proto.score_threshold)
        t5 = clock()
        for stage, dt in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            totals[stage] += dt
    per_image_ms = {k: round(1000 * v / len(images), 3) for k, v in totals.items()}
    full = json.loads((REPO / "benchmarks" / "results" / "full_coco.json").read_text())["data"]
    at_full = {k: round(v * FULL / 1000, 1) for k, v in per_image_ms.items()}
    at_full["scoring (harness eval --results)"] = full["memory"][-1]["score"]["wall_s"]
    at_full["interval (1000 resamples)"] = full["interval"]["seconds"]
    total = sum(at_full.values())
    limit = max(at_full, key=lambda k: at_full[k])
    data = {"model": args.model, "images": len(images), "threads": pipeline.backend.options.threads,
            "per_image_ms": per_image_ms, "full_images": FULL, "at_full_s": at_full,
            "share": {k: round(v / total, 3) for k, v in at_full.items()}, "limit": limit,
            "scoring_from": "benchmarks/results/full_coco.json"}
    for k, v in at_full.items():
        print(f"{k:36s} {v:8.1f} s at {FULL} images ({100 * v / total:4.1f}%)")
    print(f"the limit: {limit}")
    receipts.write_artifact(args.out, "eval_stages", provenance, data, round(time.perf_counter() - begun, 1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
