"""The NXP protocol against NXP's own evaluate.py: detection for detection on 24 raw-head cases.

The expected answers (oracles/nxp-evaluate-py/expected.json) were produced by NXP eIQ Model Zoo's
example.py/evaluate.py, unchanged, on these heads. The harness side is exactly what `harness eval`
runs for the NXP cards: the card's decoder with the `nxp` protocol's params, and the results writer
with the protocol's box convention.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from oracle_paths import oracle_dir

from harness.models.decoders import get_decoder
from harness.models.zoo import get_card
from harness.scoring.coco import ImageInfo, to_results

CARD = "centernet-mobilenetv2-fpn-512-int8"


@pytest.fixture(scope="module")
def oracle() -> tuple[Path, dict]:
    d = oracle_dir("nxp-evaluate-py")
    return d, json.loads((d / "expected.json").read_text())


def load_heads(d: Path, case: str) -> dict[str, np.ndarray]:
    with np.load(d / f"{case}.npz") as z:
        return {k: z[k] for k in z.files}


def harness_results(heads: dict[str, np.ndarray], case: dict, protocol: str) -> list[dict]:
    card = get_card(CARD)
    dets = get_decoder(card.decoder).fn(heads, **card.decoder_settings(protocol))
    image = ImageInfo(1, f"{case['case']}.jpg", case["image_width"], case["image_height"])
    return to_results(image, dets, card.protocol(protocol).box_convention, card.protocol(protocol).score_threshold)


def mismatch(ours: list[dict], theirs: list[dict]) -> str | None:
    """The first difference between two ordered detection lists, or None when they agree."""
    if len(ours) != len(theirs):
        return f"{len(ours)} detections, NXP has {len(theirs)}"
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if a["category_id"] != b["category_id"] or a["bbox"] != b["bbox"] or abs(a["score"] - b["score"]) > 2e-6:
            return f"detection {i}: {a} vs NXP {b}"
    return None


def test_swapping_the_two_same_shaped_heads_breaks_the_equality(oracle: tuple[Path, dict]) -> None:
    """box/scale and box/offset have the same shape: only their names (NXP: positions [2] and [4]) tell
    them apart, and the oracle notices a swap, so the equality above really checks the head mapping."""
    d, expected = oracle
    assert get_card(CARD).default_protocol == "nxp"
    broken = 0
    for case in expected["cases"]:
        heads = load_heads(d, case["case"])
        heads["box/scale"], heads["box/offset"] = heads["box/offset"], heads["box/scale"]
        broken += mismatch(harness_results(heads, case, "nxp"), case["detections"]) is not None
    assert broken == 24


def test_nxp_protocol_reproduces_evaluate_py(oracle: tuple[Path, dict]) -> None:
    d, expected = oracle
    cases = expected["cases"]
    assert len(cases) == 24
    failures, total = [], 0
    for case in cases:
        heads = load_heads(d, case["case"])
        assert heads["object_center"].shape == (1, 128, 128, 90)
        ours = harness_results(heads, case, "nxp")
        total += len(case["detections"])
        why = mismatch(ours, case["detections"])
        if why:
            failures.append(f"{case['case']} ({case['image_width']}x{case['image_height']}): {why}")
    print(f"NXP oracle: {len(cases) - len(failures)}/{len(cases)} cases, {total} detections, identical")
    assert not failures, "\n".join(failures)


def test_tfod_maxpool_decode_differs_from_nxp_on_the_same_heads(oracle: tuple[Path, dict]) -> None:
    """The protocols are not interchangeable: max-pool peaks keep detections NXP's NMS drops and vice versa."""
    d, expected = oracle
    differ = 0
    for case in expected["cases"]:
        tfod = harness_results(load_heads(d, case["case"]), case, "tfod")
        if mismatch(tfod, case["detections"]):
            differ += 1
    print(f"tfod protocol differs from NXP's answers on {differ}/24 cases")
    assert differ >= 20


def test_nxp_oracle_is_sensitive_to_the_protocol_details(oracle: tuple[Path, dict]) -> None:
    """Each NXP detail matters on these cases: float boxes, or another NMS IoU, break the equality."""
    d, expected = oracle
    card = get_card(CARD)
    params = card.decoder_settings("nxp")
    float_boxes = nms_04 = 0
    for case in expected["cases"]:
        heads = load_heads(d, case["case"])
        image = ImageInfo(1, "x.jpg", case["image_width"], case["image_height"])
        dets = get_decoder(card.decoder).fn(heads, **params)
        float_boxes += mismatch(to_results(image, dets, "float"), case["detections"]) is not None
        dets = get_decoder(card.decoder).fn(heads, **{**params, "nms_iou": 0.4})
        nms_04 += mismatch(to_results(image, dets, "nxp_int"), case["detections"]) is not None
    assert float_boxes == 24
    assert nms_04 >= 12
