"""The `tfod` protocol against the TF Object Detection API's own CenterNet post-processing, on 14 cases.

The expected answers (oracles/tfod-centernet/data/) were produced by center_net_meta_arch.py itself
(tensorflow/models, run unchanged with TensorFlow): cases 01-05 through `top_k_feature_map_locations` and
`prediction_tensors_to_boxes` on probability maps, cases 06-14 through `CenterNetMetaArch.postprocess` on
logits with `true_image_shapes` (letterboxes, a tiny image, none given, plateaus, a batch of two).
The harness side is what `harness eval` runs for the TF OD API card: its decoder with the `tfod`
protocol's settings, and the top-k step (`top_k_centers`) that decoder calls.
Indices, classes and boxes must be identical; scores within 2e-7 (TF's float32 sigmoid is 1-2 ulp off
the correctly rounded one this harness computes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from oracle_paths import oracle_dir

from harness.models.decoders import get_decoder
from harness.models.decoders.base import Detections
from harness.models.decoders.peaks import _top_k_centers_dense, center_valid_mask, sigmoid32, top_k_centers
from harness.models.zoo import get_card

CARD = "centernet-mobilenetv2-fpn-512-f32"
SCORE_TOL = 2e-7
GRID = 128  # output cells per side: strided boxes are normalised boxes x 128 (exact in float32)


@pytest.fixture(scope="module")
def oracle() -> tuple[Path, dict[str, dict]]:
    d = oracle_dir("tfod-centernet/data")
    cases = json.loads((d / "expected.json").read_text())["cases"]
    return d, {c["case"]: c for c in cases}


def load(d: Path, name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A case's inputs and the API's outputs as exact arrays."""
    with np.load(d / f"{name}.npz") as z, np.load(d / "expected_arrays" / f"{name}_out.npz") as o:
        return {k: z[k] for k in z.files}, {k: o[k] for k in o.files}


def tfod_settings(**over: object) -> dict:
    """The card's decoder settings under the `tfod` protocol, with 0-based classes (the API's, before
    the exporter adds 1) so they compare with the oracle's directly."""
    settings = get_card(CARD).decoder_settings("tfod")
    assert settings["peaks"] == "maxpool" and settings["top_k"] == 100 and settings["stride"] == 4
    return {**settings, "class_ids": range(90), **over}


def logits_of(prob: np.ndarray) -> np.ndarray:
    """float64 logits whose float32 sigmoid gives back `prob` exactly (asserted), to feed the API's
    probability-map cases to the harness's logit-map top-k."""
    p = prob.astype(np.float64)
    z = np.log(p) - np.log1p(-p)
    assert np.array_equal(sigmoid32(z), prob), "probabilities do not round-trip through the logits"
    return z


def compare(label: str, got: tuple[np.ndarray, ...], want: dict[str, np.ndarray], b: int, n: int) -> list[str]:
    """Differences between (scores, ys, xs, cs) and the oracle's first n entries of batch item b."""
    scores, ys, xs, cs = got
    bad = []
    if len(scores) != n:
        return [f"{label}: {len(scores)} locations, the API has {n}"]
    for key, ours in (("y_indices", ys), ("x_indices", xs), ("classes", cs)):
        if not np.array_equal(ours, want[key][b, :n]):
            i = int(np.flatnonzero(ours != want[key][b, :n])[0])
            bad.append(f"{label}: {key}[{i}] {int(ours[i])} vs API {int(want[key][b, i])}")
    err = float(np.max(np.abs(scores.astype(np.float64) - want["scores"][b, :n]), initial=0.0))
    if err > SCORE_TOL:
        bad.append(f"{label}: scores differ by {err:.3g}")
    return bad


def compare_dets(label: str, dets: Detections, boxes: np.ndarray, want: dict[str, np.ndarray], key: str,
                 b: int, n: int) -> list[str]:
    """Differences between decoded detections and the oracle's first n entries; `boxes` are the
    detections' boxes in the units of the oracle's array `key`."""
    if len(dets) != n:
        return [f"{label}: {len(dets)} detections, the API has {n}"]
    bad = []
    if not np.array_equal(dets.category_ids, want["classes"][b, :n]):
        bad.append(f"{label}: classes differ")
    if not np.array_equal(boxes, want[key][b, :n]):
        i = int(np.flatnonzero((boxes != want[key][b, :n]).any(axis=1))[0])
        bad.append(f"{label}: box {i} {boxes[i].tolist()} vs API {want[key][b, i].tolist()}")
    err = float(np.max(np.abs(dets.scores.astype(np.float64) - want["scores"][b, :n]), initial=0.0))
    if err > SCORE_TOL:
        bad.append(f"{label}: scores differ by {err:.3g}")
    return bad


TOPK_CASES = [f"case_{i:02d}" for i in range(1, 6)]
POSTPROCESS_CASES = [f"case_{i:02d}" for i in range(6, 15)]


def test_oracle_has_the_fourteen_cases(oracle: tuple[Path, dict[str, dict]]) -> None:
    _, cases = oracle
    assert sorted(cases) == TOPK_CASES + POSTPROCESS_CASES
    assert all(cases[c]["kind"] == "topk" for c in TOPK_CASES)
    assert all(cases[c]["kind"] == "postprocess" for c in POSTPROCESS_CASES)


@pytest.mark.parametrize("name", TOPK_CASES)
def test_top_k_and_boxes_equal_the_api(oracle: tuple[Path, dict[str, dict]], name: str) -> None:
    """top_k_feature_map_locations (k=100, 3x3 pool, PEAK_EPSILON) then prediction_tensors_to_boxes:
    both of the harness's top-k paths (candidates, and the whole-map recipe the flat maps fall back on)
    give the API's locations; the decoder gives its boxes in cells (x 128 of the normalised ones)."""
    d, cases = oracle
    case = cases[name]
    assert case["calls"][0]["args"] == {"feature_map": "case.feature_map (probabilities)",
                                        "max_pool_kernel_size": 3, "k": 100, "per_channel": False}
    heads, want = load(d, name)
    z = logits_of(heads["feature_map"][0])
    n = int(want["num_detections"][0])
    bad = compare("top_k_centers", top_k_centers(z, 100, True), want, 0, n)
    bad += compare("whole-map top-k", _top_k_centers_dense(z, 100, True, None, np.float32(1e-6)), want, 0, n)
    dets = get_decoder(get_card(CARD).decoder).fn(
        {"object_center": z[None], "box/scale": heads["box_scale"], "box/offset": heads["box_offset"]},
        **tfod_settings())
    bad += compare_dets("decoder", dets, dets.boxes * np.float32(GRID), want, "boxes_strided", 0, n)
    assert not bad, "\n".join(bad)


def postprocess_items(d: Path, name: str) -> list[tuple[dict, tuple[int, int] | None, dict, int]]:
    """Each batch item of a postprocess case: its heads, true shape (None when the call gave none),
    the API's outputs and the item's index in them."""
    heads, want = load(d, name)
    shapes = heads.get("true_image_shapes")
    items = []
    for b in range(heads["object_center_logits"].shape[0]):
        one = {"object_center": heads["object_center_logits"][b:b + 1],
               "box/scale": heads["box_scale"][b:b + 1], "box/offset": heads["box_offset"][b:b + 1]}
        true = None if shapes is None else (int(shapes[b][0]), int(shapes[b][1]))
        items.append((one, true, want, b))
    return items


@pytest.mark.parametrize("name", POSTPROCESS_CASES)
def test_postprocess_equals_the_api(oracle: tuple[Path, dict[str, dict]], name: str) -> None:
    """CenterNetMetaArch.postprocess: the decoder's detections are the API's first num_detections
    entries (the rest are score-0 fillers, asserted as such), per batch item; the top-k step gives
    the API's y/x indices under the API's centre mask."""
    d, _ = oracle
    fn = get_decoder(get_card(CARD).decoder).fn
    bad = []
    for heads, true, want, b in postprocess_items(d, name):
        n = int(want["num_detections"][b])
        assert np.all(want["scores"][b, n:] == 0) and np.all(want["scores"][b, :n] > 0)
        label = f"item {b}" if want["scores"].shape[0] > 1 else "decoder"
        dets = fn(heads, **tfod_settings(), true_shape=true)
        bad += compare_dets(label, dets, dets.boxes, want, "boxes", b, n)
        logits = heads["object_center"][0]
        valid = center_valid_mask(logits.shape[:2], true, 4, "tfod")
        bad += compare(f"{label} top-k", top_k_centers(logits, 100, True, valid), want, b, n)
    assert not bad, "\n".join(bad)


def test_the_oracle_tells_the_masks_and_peak_rules_apart(oracle: tuple[Path, dict[str, dict]]) -> None:
    """The equality above is not vacuous: the mask the comment intends ("cells") breaks the letterboxed
    cases the API does not mask (07, 08, 13), and a peak rule without PEAK_EPSILON breaks the near-ties."""
    d, _ = oracle
    fn = get_decoder(get_card(CARD).decoder).fn
    broken = set()
    for name in ("case_07", "case_08", "case_13"):
        for heads, true, want, b in postprocess_items(d, name):
            n = int(want["num_detections"][b])
            dets = fn(heads, **tfod_settings(center_mask="cells"), true_shape=true)
            if compare_dets("cells", dets, dets.boxes, want, "boxes", b, n):
                broken.add((name, b))
    assert broken == {("case_07", 0), ("case_08", 0), ("case_13", 0), ("case_13", 1)}
    heads, want = load(d, "case_04")
    z = logits_of(heads["feature_map"][0])
    strict = _top_k_centers_dense(z, 100, True, None, np.float32(np.finfo(np.float32).tiny))
    assert compare("strict peaks", strict, want, 0, int(want["num_detections"][0]))
