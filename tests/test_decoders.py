"""Decoders: fast top-k and NMS against brute-force references, hand-built heads, and a real model.

`top_k_cells` must equal the literal recipe of the model card and the TF OD API,
`topk(flatten(m * (m == maxpool3x3(m))))` with ties to the lower flat index, without building the
pooled map; `greedy_nms` must be tf.image.non_max_suppression's rule.
"""

from __future__ import annotations

import itertools
import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.models.decoders import (
    Detections,
    decode_ltrb_centernet,
    decode_postprocessed,
    get_decoder,
    greedy_nms,
    top_k_cells,
)
from harness.models.zoo import COCO80_IDS, MB3_PARAMS, get_card

# --------------------------------------------------------------------------------------------------
# top_k_cells


def reference_top_k(m: np.ndarray, k: int, peaks_only: bool) -> tuple[np.ndarray, ...]:
    """The recipe, literally: pad with -inf, 3x3 max pool by stacking the 9 shifts, zero the non-peaks,
    stable top-k by (-value, flat index). Returns (values, ys, xs, cs)."""
    h, w, c = m.shape
    if peaks_only:
        p = np.pad(m, ((1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
        pooled = np.stack([p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]).max(axis=0)
        m = np.where(m == pooled, m, 0)
    flat = m.reshape(-1)
    order = np.lexsort((np.arange(flat.size), -flat))[:k]
    cell = order // c
    return flat[order], cell // w, cell % w, order % c


def count_peaks(m: np.ndarray) -> int:
    h, w, _ = m.shape
    p = np.pad(m, ((1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    pooled = np.stack([p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]).max(axis=0)
    return int((m == pooled).sum())


def make_map(kind: str, shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """Positive float32 score maps (sigmoid outputs) of several textures."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    if kind == "random":
        return rng.uniform(0.001, 1.0, shape).astype(np.float32)
    if kind == "ties":  # five distinct values: ties everywhere, inside and across 3x3 windows
        return (rng.integers(1, 6, shape) / 5).astype(np.float32)
    if kind == "constant":  # every cell is a peak; order is by flat index alone
        return np.full(shape, 0.25, np.float32)
    if kind == "ramp":  # one peak per channel among many high values: the candidate search must widen
        y, x, ch = np.meshgrid(np.arange(h), np.arange(w), np.arange(c), indexing="ij")
        return ((y + x + 1) / (h + w) * (1 - 0.001 * ch)).astype(np.float32)
    if kind == "plateaus":  # flat regions with a few bumps: peaks are whole plateaus
        m = np.full(shape, 0.1, np.float32)
        m[rng.random(shape) < 0.02] = 0.9
        return m
    raise ValueError(kind)


SHAPES = [(1, 1, 1), (1, 5, 1), (7, 9, 5), (3, 3, 2), (33, 31, 7), (128, 128, 80)]
KINDS = ["random", "ties", "constant", "ramp", "plateaus"]


@pytest.mark.parametrize("peaks_only", [True, False], ids=["peaks", "plain"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_top_k_cells_matches_reference(shape: tuple[int, int, int], kind: str, peaks_only: bool) -> None:
    """Same values, positions and order as the literal recipe, for k below, at and above the map size.

    With fewer than k peaks the recipe pads with zeroed non-peaks; top_k_cells returns only the peaks.
    """
    m = make_map(kind, shape, seed=zlib.crc32(f"{shape}{kind}".encode()))
    n_peaks = count_peaks(m) if peaks_only else m.size
    ks = {1, 5, 100, m.size, m.size + 3} if m.size <= 10_000 else {1, 100, 1000}
    for k in sorted(ks):
        got = top_k_cells(m, k, peaks_only)
        ref = reference_top_k(m, k, peaks_only)
        n = min(k, n_peaks)
        assert len(got[0]) == n, f"k={k}"
        for g, r, what in zip(got, ref, ("values", "ys", "xs", "cs"), strict=True):
            np.testing.assert_array_equal(g, r[:n], err_msg=f"{what}, k={k}")
        assert not ref[0][n:].any(), "beyond the peaks the recipe only has zeroed cells"
        assert got[0].dtype == m.dtype and all(a.dtype.kind == "i" for a in got[1:])


@pytest.mark.parametrize("shape", [(7, 9, 5), (128, 128, 90)], ids=["small", "tfod"])
def test_top_k_cells_on_logits_selects_like_the_sigmoid(shape: tuple[int, int, int]) -> None:
    """The TF OD decoder takes peaks on logits: same cells as the recipe on sigmoid(logits)."""
    rng = np.random.default_rng(7)
    logits = np.round(rng.normal(-4, 2, shape), 1).astype(np.float32)  # negative, with ties
    probs = 1 / (1 + np.exp(-logits.astype(np.float64)))
    for peaks_only in (True, False):
        got = top_k_cells(logits, 100, peaks_only)
        ref = reference_top_k(probs, 100, peaks_only)
        n = min(100, count_peaks(probs) if peaks_only else probs.size)
        assert len(got[0]) == n
        for g, r in zip(got[1:], ref[1:], strict=True):
            np.testing.assert_array_equal(g, r[:n])
        np.testing.assert_array_equal(1 / (1 + np.exp(-got[0].astype(np.float64))), ref[0][:n])


def test_top_k_cells_with_k_zero() -> None:
    m = make_map("random", (4, 4, 2), 0)
    values, ys, xs, cs = top_k_cells(m, 0, True)
    assert values.size == ys.size == xs.size == cs.size == 0


# --------------------------------------------------------------------------------------------------
# greedy_nms


def reference_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_out: int) -> list[int]:
    """Visit boxes by score (ties: lower index); keep one unless it overlaps a kept one by IoU > threshold."""
    def iou(a: np.ndarray, b: np.ndarray) -> float:
        ay0, ay1 = sorted((a[0], a[2]))
        ax0, ax1 = sorted((a[1], a[3]))
        by0, by1 = sorted((b[0], b[2]))
        bx0, bx1 = sorted((b[1], b[3]))
        inter = max(0.0, min(ay1, by1) - max(ay0, by0)) * max(0.0, min(ax1, bx1) - max(ax0, bx0))
        union = (ay1 - ay0) * (ax1 - ax0) + (by1 - by0) * (bx1 - bx0) - inter
        return inter / union if union > 0 else 0.0

    keep: list[int] = []
    for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i)):
        if len(keep) == max_out:
            break
        if all(iou(boxes[i], boxes[j]) <= iou_threshold for j in keep):
            keep.append(i)
    return keep


def random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Clustered boxes (so that many overlap), a few with swapped corners or zero area."""
    centres = rng.uniform(0.2, 0.8, (5, 2))[rng.integers(0, 5, n)] + rng.normal(0, 0.03, (n, 2))
    size = rng.uniform(0.02, 0.3, (n, 2))
    boxes = np.concatenate([centres - size / 2, centres + size / 2], axis=1)
    flip = rng.random(n) < 0.1
    boxes[flip] = boxes[flip][:, [2, 3, 0, 1]]
    zero = rng.random(n) < 0.05
    boxes[zero, 2] = boxes[zero, 0]
    return boxes


@pytest.mark.parametrize("seed", range(6))
def test_greedy_nms_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = [0, 1, 7, 60, 200, 300][seed]
    boxes = random_boxes(rng, n)
    scores = np.round(rng.random(n), 2)  # ties
    for thr, max_out in itertools.product((0.3, 0.5, 0.7), (1, 10, 100, 1000)):
        got = greedy_nms(boxes, scores, thr, max_out)
        assert got.tolist() == reference_nms(boxes, scores, thr, max_out), (thr, max_out)


def test_greedy_nms_by_hand() -> None:
    """IoU exactly at the threshold keeps the box (suppression needs IoU > threshold)."""
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 0.5], [0, 0.5, 1, 1], [2, 2, 3, 3]], np.float64)
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    # box 1 and box 2 each overlap box 0 with IoU 0.5, and each other with IoU 0
    assert greedy_nms(boxes, scores, 0.5, 10).tolist() == [0, 1, 2, 3]
    assert greedy_nms(boxes, scores, 0.49, 10).tolist() == [0, 3]
    assert greedy_nms(boxes, scores, 0.49, 1).tolist() == [0]


# --------------------------------------------------------------------------------------------------
# decode_ltrb_centernet (mb3-centernet heads)


def test_coco80_ids() -> None:
    """Class index 0..79 maps to the official ids in sorted order; the 10 never-used ids are skipped."""
    assert len(COCO80_IDS) == 80 and list(COCO80_IDS) == sorted(set(COCO80_IDS))
    assert (COCO80_IDS[0], COCO80_IDS[11], COCO80_IDS[79]) == (1, 13, 90)
    assert set(range(1, 91)) - set(COCO80_IDS) == {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}


def ltrb_heads(batch: bool = True) -> dict[str, np.ndarray]:
    """A 128x128x80 heatmap with three peaks and their (left, top, right, bottom) distances in pixels."""
    hm = np.zeros((128, 128, 80), np.float32)
    wh = np.zeros((128, 128, 4), np.float32)
    for (y, x, c), score, ltrb in (
        ((10, 20, 0), 0.9, (8, 12, 16, 20)),
        ((64, 100, 11), 0.8, (-1, 2, 30, 40)),  # a slightly negative distance is kept as is
        ((127, 0, 79), 0.7, (10, 4, 6, 30)),  # a box beyond the input: no clipping
    ):
        hm[y, x, c] = score
        wh[y, x] = ltrb
    if batch:
        return {"heatmap": hm[None], "wh": wh[None]}
    return {"heatmap": hm, "wh": wh}


@pytest.mark.parametrize("batch", [True, False])
def test_ltrb_decoder_by_hand(batch: bool) -> None:
    """Box = (4x - l, 4y - t, 4x + r, 4y + b) / 512 as [ymin, xmin, ymax, xmax]; classes via COCO80."""
    dets = decode_ltrb_centernet(ltrb_heads(batch), **{**MB3_PARAMS, "top_k": 3})
    np.testing.assert_array_equal(dets.scores, np.array([0.9, 0.8, 0.7], np.float32))
    np.testing.assert_array_equal(dets.category_ids, [1, 13, 90])
    expected = np.array([
        [40 - 12, 80 - 8, 40 + 20, 80 + 16],  # cell (y=10, x=20), ltrb (8, 12, 16, 20)
        [256 - 2, 400 + 1, 256 + 40, 400 + 30],  # cell (64, 100), ltrb (-1, 2, 30, 40)
        [508 - 4, 0 - 10, 508 + 30, 0 + 6],  # cell (127, 0), ltrb (10, 4, 6, 30)
    ], np.float32) / 512
    np.testing.assert_array_equal(dets.boxes, expected)
    assert dets.boxes.dtype == np.float32 and dets.scores.dtype == np.float32 and dets.category_ids.dtype == np.int64


def test_ltrb_decoder_takes_top_100_peaks() -> None:
    """The default top 100: the three peaks first, then zero-score peaks of the empty map (no threshold)."""
    dets = decode_ltrb_centernet(ltrb_heads(), **MB3_PARAMS)
    assert len(dets) == 100
    assert dets.scores[:3].tolist() == pytest.approx([0.9, 0.8, 0.7])
    assert not dets.scores[3:].any()


def test_ltrb_decoder_refuses_more_classes_than_the_card_maps() -> None:
    heads = ltrb_heads()
    with pytest.raises(HarnessError, match="class_ids"):
        decode_ltrb_centernet(heads, **{**MB3_PARAMS, "class_ids": COCO80_IDS[:50]})


def test_decoder_registry() -> None:
    assert get_decoder("ltrb_centernet").heads == ("heatmap", "wh")
    with pytest.raises(HarnessError, match="unknown decoder"):
        get_decoder("yolo")


# --------------------------------------------------------------------------------------------------
# decode_postprocessed (TF Hub detection dict)


def hub_heads(num: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    boxes = rng.random((1, 100, 4)).astype(np.float32)
    scores = np.sort(rng.random((1, 100)))[:, ::-1].astype(np.float32)
    classes = rng.integers(1, 91, (1, 100)).astype(np.float32)
    return {"detection_boxes": boxes, "detection_scores": scores, "detection_classes": classes,
            "num_detections": np.array([num], np.float32)}


@pytest.mark.parametrize(("num", "top_k", "expected"), [(5.0, 100, 5), (100.0, 100, 100), (100.0, 10, 10),
                                                        (0.0, 100, 0), (250.0, 100, 100)])
def test_postprocessed_honours_num_detections(num: float, top_k: int, expected: int) -> None:
    """Only the first num_detections entries (at most top_k) are detections; the padding is dropped."""
    heads = hub_heads(num)
    dets = decode_postprocessed(heads, top_k=top_k)
    assert len(dets) == expected
    np.testing.assert_array_equal(dets.boxes, heads["detection_boxes"][0, :expected])
    np.testing.assert_array_equal(dets.scores, heads["detection_scores"][0, :expected])
    np.testing.assert_array_equal(dets.category_ids, heads["detection_classes"][0, :expected].astype(np.int64))
    assert dets.category_ids.dtype == np.int64


def test_postprocessed_rounds_float_class_ids() -> None:
    """Class ids arrive as floats; 17.999999 is class 18, not 17."""
    heads = hub_heads(3.0)
    heads["detection_classes"][0, :3] = [17.999999, 1.0000001, 90.0]
    assert decode_postprocessed(heads).category_ids.tolist() == [18, 1, 90]


# --------------------------------------------------------------------------------------------------
# A real model: the mirror's raw_f32.tflite decoded here vs the hub SavedModel's own post-processing


@pytest.fixture(scope="module")
def real_image(mirror: Path) -> np.ndarray:
    """The first val2017 image by id, resized as the model card says (PIL bilinear to 512x512), uint8."""
    from PIL import Image

    gt = json.loads((mirror / "coco" / "annotations" / "instances_val2017.json").read_text())
    first = min(gt["images"], key=lambda i: i["id"])
    with Image.open(mirror / "coco" / "val2017" / first["file_name"]) as im:
        return np.asarray(im.convert("RGB").resize((512, 512), Image.BILINEAR))


@pytest.fixture(scope="module")
def f32_heads(mirror: Path, real_image: np.ndarray) -> dict[str, np.ndarray]:
    from harness.models.backends import create_backend

    card = get_card("mb3-centernet-f32")
    backend = create_backend("tflite", mirror / card.source.mirror_path, card.outputs)
    backend.load()
    return backend.predict(real_image.astype(np.float32)[None])


def test_real_heatmap_top_k_matches_reference(f32_heads: dict[str, np.ndarray]) -> None:
    """On a real 128x128x80 heatmap the fast top-k equals the recipe (and the map has plenty of peaks)."""
    hm = f32_heads["heatmap"][0]
    got = top_k_cells(hm, 100, peaks_only=True)
    ref = reference_top_k(hm, 100, peaks_only=True)
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_array_equal(g, r)


@pytest.mark.slow
def test_f32_tflite_decoded_matches_the_hub_savedmodel(mirror: Path, real_image: np.ndarray,
                                                       f32_heads: dict[str, np.ndarray]) -> None:
    """Our ltrb decode of raw_f32.tflite gives the hub SavedModel's own 100 detections, in order.

    Both get the same 512x512 array (the hub resizes inside with TF bilinear, which is not PIL's, so
    it is fed an image already at 512x512). The hub clips its boxes to [0, 1]; the raw decode does not.
    """
    from harness.models.backends import create_backend

    ours = decode_ltrb_centernet(f32_heads, **get_card("mb3-centernet-f32").decoder_params)
    card = get_card("mb3-centernet-hub")
    hub = create_backend("savedmodel", mirror / card.source.mirror_path, card.outputs)
    hub.load()
    theirs = decode_postprocessed(hub.predict(real_image[None]), **card.decoder_params)
    assert len(ours) == len(theirs) == 100
    assert isinstance(theirs, Detections)
    assert ours.scores[0] > 0.5, "a real image has at least one confident detection"
    np.testing.assert_array_equal(ours.category_ids, theirs.category_ids)
    np.testing.assert_allclose(ours.scores, theirs.scores, rtol=0, atol=1e-3)
    np.testing.assert_allclose(np.clip(ours.boxes, 0, 1), theirs.boxes, rtol=0, atol=1e-3)
