"""Decoding one image's heads: target 2 ms or less (median), numpy only."""

from __future__ import annotations

import numpy as np
import pytest

from harness.models.decoders import decode_ltrb_centernet, decode_tfod_centernet
from harness.models.zoo import COCO80_IDS, LABELMAP90_IDS

TARGET_S = 0.002


def _check(benchmark) -> None:
    median = benchmark.stats.stats.median
    benchmark.extra_info["target_s"] = TARGET_S
    assert median <= TARGET_S, f"decode median {median * 1e3:.2f} ms is over the {TARGET_S * 1e3:.0f} ms target"


@pytest.fixture(scope="module")
def tfod_heads() -> dict[str, np.ndarray]:
    """Random logits in the range a trained object_center head produces (mostly strongly negative)."""
    rng = np.random.default_rng(0)
    return {
        "object_center": rng.normal(-6, 2, (1, 128, 128, 90)).astype(np.float32),
        "box/scale": rng.uniform(0, 40, (1, 128, 128, 2)).astype(np.float32),
        "box/offset": rng.uniform(0, 1, (1, 128, 128, 2)).astype(np.float32),
    }


@pytest.fixture(scope="module")
def mb3_heads(mirror) -> dict[str, np.ndarray]:
    """Real heads: mb3-centernet-f32 on the first val2017 image of the mirror."""
    from harness.models.backends import create_backend
    from harness.models.images import read_rgb
    from harness.models.preprocess import apply_preprocess
    from harness.models.zoo import get_card
    from harness.scoring.coco import CocoGroundTruth

    card = get_card("mb3-centernet-f32")
    backend = create_backend(card.backend, mirror / card.source.mirror_path, card.outputs)
    backend.load()
    gt = CocoGroundTruth(mirror / "coco/annotations/instances_val2017.json", mirror / "coco/val2017")
    return backend.predict(apply_preprocess(read_rgb(gt.image_path(gt.images[0])), card.input).batch)


@pytest.mark.parametrize("peaks", ["maxpool", "nms"])
def test_decode_tfod_centernet(benchmark, tfod_heads, peaks):
    dets = benchmark(decode_tfod_centernet, tfod_heads, class_ids=LABELMAP90_IDS, peaks=peaks)
    assert 0 < len(dets) <= 100
    _check(benchmark)


def test_decode_ltrb_centernet_real_heads(benchmark, mb3_heads):
    dets = benchmark(decode_ltrb_centernet, mb3_heads, class_ids=COCO80_IDS)
    assert len(dets) == 100
    _check(benchmark)
