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
from oracle_paths import need

from harness.errors import HarnessError
from harness.models.decoders import (
    PEAK_EPSILON,
    Detections,
    center_valid_mask,
    decode_ltrb_centernet,
    decode_postprocessed,
    decode_tfod_centernet,
    get_decoder,
    greedy_nms,
    sigmoid32,
    top_k_cells,
    top_k_centers,
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
    """On logits top_k_cells selects the cells the exact recipe selects on sigmoid(logits) (float64)."""
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
# The TF OD API postprocess (center_net_meta_arch.py): probabilities, PEAK_EPSILON, true-shape mask


def reference_tfod(logits: np.ndarray, scale: np.ndarray, offset: np.ndarray, k: int = 100,
                   true_shape: tuple[int, int] | None = None, rule: str = "tfod", stride: int = 4,
                   maxpool: bool = True) -> tuple[np.ndarray, ...]:
    """center_net_meta_arch.py postprocess written out literally on the whole map, in float32.

    p = sigmoid(logits); mask_from_true_image_shape (rule "tfod": cell index < true shape in pixels, as
    published; "cells": < ceil(true / stride)); peaks |p - maxpool3x3_SAME(p)| < 1e-6; top-k of the
    flattened map, ties to the lower index; num_detections = scores > 0; boxes from the cells, clipped
    to the grid, * stride / true shape, clipped to [0, 1]. Returns (scores, boxes, class indices).
    """
    h, w, c = logits.shape
    p = (1 / (1 + np.exp(-logits.astype(np.float64)))).astype(np.float32)
    true = true_shape or (h * stride, w * stride)
    if true_shape is not None:
        th, tw = true if rule == "tfod" else (-(-true[0] // stride), -(-true[1] // stride))
        for y in range(h):
            for x in range(w):
                if not (y < th and x < tw):
                    p[y, x, :] = 0
    if maxpool:
        padded = np.full((h + 2, w + 2, c), -np.inf, np.float32)
        padded[1:-1, 1:-1] = p
        pooled = np.max([padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)
        p = p * (np.abs(p - pooled) < np.float32(1e-6)).astype(np.float32)
    flat = p.reshape(-1)
    order = sorted(range(flat.size), key=lambda i: (-flat[i], i))[:k]
    order = [i for i in order if flat[i] > 0]
    ys, xs, cs = [i // c // w for i in order], [i // c % w for i in order], [i % c for i in order]
    boxes = []
    for y, x in zip(ys, xs, strict=True):
        hh, ww = max(scale[y, x, 0], 0), max(scale[y, x, 1], 0)
        cy, cx = np.float32(y) + offset[y, x, 0], np.float32(x) + offset[y, x, 1]
        b = [min(max(cy - hh / 2, 0), h), min(max(cx - ww / 2, 0), w), min(max(cy + hh / 2, 0), h),
             min(max(cx + ww / 2, 0), w)]
        boxes.append([min(max(np.float32(v) * stride / t, 0), 1) for v, t in zip(b, true * 2, strict=True)])
    return flat[order], np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(cs, np.int64)


def tfod_heads(logits: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w, _ = logits.shape
    return {"object_center": logits[None].astype(np.float32),
            "box/scale": rng.uniform(-1, 12, (1, h, w, 2)).astype(np.float32),
            "box/offset": rng.uniform(0, 1, (1, h, w, 2)).astype(np.float32)}


def assert_tfod_equal(logits: np.ndarray, k: int = 100, **kw) -> Detections:
    heads = tfod_heads(logits)
    h, w, c = logits.shape
    got = decode_tfod_centernet(heads, class_ids=range(1, c + 1), input_size=(4 * h, 4 * w), top_k=k, **kw)
    ref_kw = {"true_shape": kw.get("true_shape"), "rule": kw.get("center_mask", "tfod")}
    scores, boxes, cs = reference_tfod(logits, heads["box/scale"][0], heads["box/offset"][0], k, **ref_kw)
    np.testing.assert_array_equal(got.scores, scores)
    np.testing.assert_array_equal(got.category_ids, cs + 1)
    np.testing.assert_allclose(got.boxes, boxes, rtol=0, atol=1e-7)
    return got


def test_tfod_plateau_of_equal_logits_is_all_peaks() -> None:
    """A 2x2 plateau: every cell equals the pooled maximum, so all four are peaks (ties by flat index)."""
    logits = np.full((6, 7, 2), -8.0, np.float32)
    logits[2:4, 3:5, 1] = 2.0
    logits[0, 0, 0] = 1.0
    got = assert_tfod_equal(logits, k=5)
    assert got.scores[:4].tolist() == [sigmoid32(2.0)] * 4 and got.category_ids[:4].tolist() == [2] * 4
    assert got.scores[4] == sigmoid32(1.0)


def test_tfod_peak_epsilon_on_probabilities() -> None:
    """Logits 14 and 15 are 5e-7 apart as probabilities (< 1e-6): both peaks, where an exact test on
    logits keeps one; 5 and 5.01 are 6.6e-5 apart: only the larger is a peak."""
    logits = np.full((5, 9, 1), -10.0, np.float32)
    logits[2, 1, 0], logits[2, 2, 0] = 15.0, 14.0
    logits[2, 6, 0], logits[2, 7, 0] = 5.01, 5.0
    assert sigmoid32(15.0) - sigmoid32(14.0) < PEAK_EPSILON
    got = assert_tfod_equal(logits, k=4)
    assert got.scores[:3].tolist() == [sigmoid32(15.0), sigmoid32(14.0), sigmoid32(5.01)]
    assert got.scores[3] == sigmoid32(-10.0)  # then the flat background (a plateau), never the 5.0
    old = top_k_cells(logits, 4, peaks_only=True)  # exact equality on logits: 14 is not a peak there
    assert (2, 2) not in set(zip(old[1].tolist(), old[2].tolist(), strict=True))


def test_tfod_saturated_centres_tie_by_index() -> None:
    """Logits 20..40 all become probability 1.0: all are peaks and they come in flat-index order."""
    logits = np.full((4, 4, 3), -20.0, np.float32)
    logits[1, 1, 2], logits[1, 2, 0], logits[2, 1, 1], logits[0, 0, 0] = 40.0, 20.0, 30.0, 25.0
    got = assert_tfod_equal(logits, k=10)
    assert got.scores[:4].tolist() == [1.0] * 4
    assert got.category_ids[:4].tolist() == [1, 3, 1, 2]  # (0,0,0), (1,1,2), (1,2,0), (2,1,1)


@pytest.mark.parametrize(("true_shape", "rule"), [((384, 512), "cells"), ((40, 60), "tfod"), ((40, 60), "cells"),
                                                  ((384, 512), "tfod"), ((1, 1), "cells")])
def test_tfod_true_shape_masks_centres_and_normalises_boxes(true_shape: tuple[int, int], rule: str) -> None:
    rng = np.random.default_rng(5)
    logits = rng.normal(-2, 2, (128, 128, 3)).astype(np.float32)
    logits[120, 5, 0] = 12.0  # a strong centre in the padding of a letterboxed image
    got = assert_tfod_equal(logits, true_shape=true_shape, center_mask=rule)
    valid = center_valid_mask((128, 128), true_shape, 4, rule)
    if rule == "tfod" and true_shape == (384, 512):  # the published rule compares cells with pixels
        assert valid is None and got.scores[0] == sigmoid32(12.0)
    elif rule == "tfod":  # (40, 60) pixels: cells from row 40 / column 60 on are masked
        assert valid is not None and valid[39, 59] and not valid[40].any() and not valid[:, 60].any()
    elif rule == "cells" and true_shape == (384, 512):
        assert valid is not None and valid[95].all() and not valid[96].any()
        assert got.scores[0] < sigmoid32(12.0)


def test_tfod_default_true_shape_is_the_whole_input() -> None:
    logits = np.random.default_rng(8).normal(-3, 2, (16, 16, 4)).astype(np.float32)
    heads = tfod_heads(logits)
    a = decode_tfod_centernet(heads, class_ids=range(1, 5), input_size=(64, 64))
    b = decode_tfod_centernet(heads, class_ids=range(1, 5), input_size=(64, 64), true_shape=(64, 64))
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert_tfod_equal(logits)


@pytest.mark.parametrize("kind", ["random", "plateaus", "ramp", "constant"])
def test_top_k_centers_matches_reference_on_many_maps(kind: str) -> None:
    for seed in range(3):
        m = make_map(kind, (12, 13, 6), seed) * 4 - 2
        scores, _, cs = reference_tfod(m, np.zeros((12, 13, 2), np.float32), np.zeros((12, 13, 2), np.float32), 30)
        got = top_k_centers(m, 30, True)
        np.testing.assert_array_equal(got[0], scores)
        np.testing.assert_array_equal(got[3], cs)


def test_tfod_maxpool_against_tensorflow_ops() -> None:
    """The same postprocess written with TF's own ops (sigmoid, max_pool2d SAME, top_k) on real-sized heads.

    TF's float32 sigmoid is a few ulp off the correctly rounded one; on these (non-saturated) heads the
    selected cells must be identical and the scores equal to 1e-6.
    """
    tf = need("tensorflow")
    rng = np.random.default_rng(11)
    logits = rng.normal(-4, 2, (1, 128, 128, 90)).astype(np.float32)
    logits[0, 40:43, 50:53, 7] = 6.0  # a plateau
    prob = tf.sigmoid(logits)
    pooled = tf.nn.max_pool2d(prob, ksize=3, strides=1, padding="SAME")
    peaks = prob * tf.cast(tf.abs(prob - pooled) < 1e-6, tf.float32)
    scores, idx = tf.math.top_k(tf.reshape(peaks, [1, -1]), 100)
    idx = idx.numpy()[0]
    got = top_k_centers(logits[0], 100, True)
    np.testing.assert_array_equal(got[1] * 128 * 90 + got[2] * 90 + got[3], idx)
    np.testing.assert_allclose(got[0], scores.numpy()[0], rtol=0, atol=1e-6)


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


def test_the_registry_knows_which_decoder_takes_the_true_shape() -> None:
    """The Pipeline passes a letterboxed input's true shape only to a decoder that normalises by it (the TF
    OD API's); the others' boxes are mapped back by boxes_to_image."""
    assert get_decoder("tfod_centernet").takes_true_shape
    assert not get_decoder("ltrb_centernet").takes_true_shape
    assert not get_decoder("postprocessed").takes_true_shape
    assert set(get_decoder("tfod_centernet").params) >= {"class_ids", "peaks", "nms_iou", "center_mask", "top_k"}
