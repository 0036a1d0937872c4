"""`harness eval` of mb3-centernet-f32 on the mirror: at most 1.2x the sum of its model invoke times.

Images are read and resized ahead of the interpreter, so the loop should cost little beyond the model.
A bare `predict` loop over the same prepared images runs in the same process for reference.
"""

from __future__ import annotations

import time

from harness.measure.runner import run_eval
from harness.models.mirror import Mirror
from harness.models.pipeline import Pipeline
from harness.models.zoo import get_card
from harness.scoring.coco import CocoGroundTruth

TARGET = 1.2


def test_eval_overhead_mb3_f32(benchmark, mirror):
    card = get_card("mb3-centernet-f32")
    m = Mirror(mirror)
    gt = CocoGroundTruth(m.val_annotations, m.val_images)
    pipeline = Pipeline.open(card, mirror)
    backend = pipeline.backend

    def whole_eval():
        t0 = time.perf_counter()
        result, _, timing = run_eval(pipeline, gt, gt.images)
        return result, timing, time.perf_counter() - t0

    result, timing, total_s = benchmark.pedantic(whole_eval, rounds=1, iterations=1, warmup_rounds=0)

    batches = [pipeline.prepare(pipeline.read(gt.image_path(i))).batch for i in gt.images]
    t0 = time.perf_counter()
    for b in batches:
        backend.predict(b)
    bare_s = time.perf_counter() - t0

    ratio = total_s / timing.model_s
    benchmark.extra_info.update({"total_s": total_s, "model_s": timing.model_s, "bare_predict_loop_s": bare_s,
                                 "total_over_model": ratio, "total_over_bare": total_s / bare_s,
                                 "AP": result.stats["AP"], "target": TARGET})
    print(f"\neval (loop + scoring) {total_s:.2f} s, model {timing.model_s:.2f} s in-run ({ratio:.3f}x), "
          f"bare predict loop {bare_s:.2f} s ({total_s / bare_s:.3f}x)")
    assert ratio <= TARGET
