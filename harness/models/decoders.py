"""Turn a model's named output heads into detections, one decoder per head layout (numpy only).

Every decoder returns `Detections` with boxes normalised to the model input, [ymin, xmin, ymax, xmax],
which is also normalised to the original image when the input was stretched to the model's size.
For a letterboxed input, `tfod_centernet` takes the true (unpadded) shape and normalises by it, as the
TF OD API does; other decoders' boxes go through harness.models.preprocess.boxes_to_image.
Scaling to pixels and the results-file conventions belong to `harness.scoring.coco`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError


@dataclass
class Detections:
    """Detections of one image: normalised [ymin, xmin, ymax, xmax], scores, official category ids."""

    boxes: np.ndarray  # float32 [N, 4]
    scores: np.ndarray  # float32 [N]
    category_ids: np.ndarray  # int64 [N]

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


@dataclass(frozen=True)
class Decoder:
    """A registered decoder: the heads it reads and the function that decodes them."""

    name: str
    heads: tuple[str, ...]
    fn: Callable[..., Detections]
    doc: str


DECODERS: dict[str, Decoder] = {}


def register_decoder(name: str, heads: Sequence[str]) -> Callable[[Callable[..., Detections]], Callable]:
    """Register a decoder under `name`; it receives the heads by name plus the card's decoder params."""

    def wrap(fn: Callable[..., Detections]) -> Callable[..., Detections]:
        if name in DECODERS:
            raise ValueError(f"decoder {name!r} registered twice")
        DECODERS[name] = Decoder(name, tuple(heads), fn, (fn.__doc__ or "").strip().splitlines()[0])
        return fn

    return wrap


def get_decoder(name: str) -> Decoder:
    try:
        return DECODERS[name]
    except KeyError:
        raise HarnessError(f"unknown decoder {name!r}; known: {', '.join(sorted(DECODERS))}") from None


# --------------------------------------------------------------------------------------------------
# Shared pieces


def top_k_cells(score_map: np.ndarray, k: int, peaks_only: bool) -> tuple[np.ndarray, ...]:
    """Top-k of a [H, W, C] map over (y, x, c), optionally only 3x3 local maxima.

    Same result as `topk(flatten(m * (m == maxpool3x3(m))))` with ties broken by the lower flat index
    (tf.math.top_k's order), but it never builds the pooled map: candidates above a threshold taken
    from per-cell maxima are checked against their own 3x3 neighbourhood, which keeps one image
    under a couple of milliseconds. Returns (scores, ys, xs, cs), best first.
    """
    flat = score_map.reshape(-1)
    c = score_map.shape[2]
    w = score_map.shape[1]
    k = min(k, flat.size)
    if k == 0:
        empty = np.zeros(0, np.int64)
        return np.zeros(0, score_map.dtype), empty, empty, empty
    blocks = _BlockMax(flat)
    want = 2 * k  # peaks are a fraction of the high values: start with room for them
    while True:
        # At least `n` blocks hold a value >= t, so at least `n` elements pass: a cheap lower bound
        # on the k-th largest value that never sorts the whole map.
        n = min(want, blocks.count)
        t = np.partition(blocks.maxima, blocks.count - n)[blocks.count - n]
        exhausted = n == blocks.count
        idx = np.arange(flat.size) if exhausted else blocks.indices_at_least(t)
        if peaks_only:
            idx = idx[_is_peak(score_map, idx)]
        if idx.size >= k or exhausted:
            break
        want *= 4
    vals = flat[idx]
    order = np.lexsort((idx, -vals))[:k]
    idx = idx[order]
    cs = idx % c
    cell = idx // c
    return vals[order], cell // w, cell % w, cs


class _BlockMax:
    """The maximum of each run of `size` consecutive values of a flat array, to find candidates fast."""

    def __init__(self, flat: np.ndarray, size: int = 1024) -> None:
        self.flat, self.size = flat, size
        self.full = flat.size // size
        self.rows = flat[: self.full * size].reshape(self.full, size)
        maxima = self.rows.max(axis=1)
        if flat.size % size:
            maxima = np.append(maxima, flat[self.full * size:].max())
        self.maxima = maxima
        self.count = maxima.size

    def indices_at_least(self, t: float) -> np.ndarray:
        """Flat indices of all values >= t, in increasing order."""
        hit = np.flatnonzero(self.maxima >= t)
        if hit.size * 8 > self.count:  # gathering many blocks costs more than one pass over all
            return np.flatnonzero(self.flat >= t)
        full = hit[hit < self.full]
        r, col = np.nonzero(self.rows[full] >= t)
        idx = full[r] * self.size + col
        if hit.size and hit[-1] == self.full:  # the short last block
            tail = np.flatnonzero(self.flat[self.full * self.size:] >= t) + self.full * self.size
            idx = np.concatenate([idx, tail])
        return idx


def _is_peak(score_map: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Whether each flat index is >= all of its 3x3 neighbours in its own channel (SAME padding).

    Works on flat offsets: a neighbour outside the map is replaced by the cell itself, which is the
    same as -inf padding for a ">= every neighbour" test.
    """
    h, w, c = score_map.shape
    flat = score_map.reshape(-1)
    cell = idx // c
    y, x = cell // w, cell % w
    v = flat[idx]
    ok = np.ones(idx.size, bool)
    for dy in (-1, 0, 1):
        y_in = (y + dy >= 0) & (y + dy < h)
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            inside = y_in & (x + dx >= 0) & (x + dx < w)
            ok &= v >= flat[np.where(inside, idx + (dy * w + dx) * c, idx)]
    return ok


# TF OD API center_net_meta_arch.py: a location is a peak when |prob - maxpool3x3(prob)| < PEAK_EPSILON,
# on sigmoid probabilities in float32 (so saturated or nearly equal neighbours are all peaks).
PEAK_EPSILON = np.float32(1e-6)
CENTER_MASKS = ("tfod", "cells", "none")


def sigmoid32(z: np.ndarray) -> np.ndarray:
    """float32 sigmoid, correctly rounded (computed in float64).

    TF's own float32 sigmoid (Eigen) is up to a few ulp off and saturates to exactly 1.0 from
    z ~ 16.6 instead of ~ 17.3, so ties at saturation may be ordered differently from a TF graph.
    """
    return (1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))).astype(np.float32)


def center_valid_mask(grid_hw: tuple[int, int], true_shape: Sequence[int] | None, stride: int,
                      rule: str = "tfod") -> np.ndarray | None:
    """Which output cells may hold object centres, for an input whose content is `true_shape` pixels.

    "tfod" is center_net_meta_arch.py's postprocess as published: mask_from_true_image_shape compares
    the output *cell* index with the true shape in input *pixels*, so it masks only cells beyond the
    true height/width in pixels (nothing, for a letterboxed 512x512 input whose content is >= 128 px).
    "cells" masks what the comment intends and the loss uses: cells at or beyond ceil(true / stride).
    "none" masks nothing. Returns None when nothing is masked.
    """
    if rule not in CENTER_MASKS:
        raise HarnessError(f"center_mask must be one of {', '.join(CENTER_MASKS)}, not {rule!r}")
    if true_shape is None or rule == "none":
        return None
    th, tw = int(true_shape[0]), int(true_shape[1])
    if rule == "cells":
        th, tw = -(-th // stride), -(-tw // stride)
    gh, gw = grid_hw
    if th >= gh and tw >= gw:
        return None
    return (np.arange(gh)[:, None] < th) & (np.arange(gw)[None, :] < tw)


def top_k_centers(logits: np.ndarray, k: int, peaks: bool, valid: np.ndarray | None = None,
                  eps: np.float32 = PEAK_EPSILON) -> tuple[np.ndarray, ...]:
    """The TF OD API's top_k_feature_map_locations on sigmoid(logits) [H, W, C], masked by `valid` [H, W].

    Literally: p = sigmoid(logits) * valid; with `peaks`, p is zeroed where |p - maxpool3x3(p)| >= eps;
    top-k of the flattened p with ties to the lower flat index; locations whose score is 0 dropped (the
    API counts num_detections as scores > 0). Without building the whole probability map: candidates are
    cells whose logit can reach the k-th score (sigmoid is monotonic), their neighbours are looked up.
    Returns (float32 scores, ys, xs, cs), best first.
    """
    flat = logits.reshape(-1)
    _, w, c = logits.shape
    k = min(k, flat.size)
    empty = np.zeros(0, np.int64)
    if k == 0:
        return np.zeros(0, np.float32), empty, empty, empty
    blocks = _BlockMax(flat)
    want = 2 * k
    while True:
        n = min(want, blocks.count)
        t = np.partition(blocks.maxima, blocks.count - n)[blocks.count - n]
        exhausted = n == blocks.count
        # Every cell whose float32 probability can equal sigmoid32(t): logits just below t may round
        # to the same probability, so the cut is moved to the logit of the float32 value below it.
        pt = sigmoid32(t)
        below = np.nextafter(pt, np.float32(0))
        cut = -np.inf if below <= 0 else float(np.log(below / (1.0 - float(below)))) if below < 1 else float(t)
        idx = np.arange(flat.size) if exhausted else blocks.indices_at_least(min(cut, float(t)) - 1e-9)
        if idx.size * 8 > flat.size:  # flat or saturated maps: the whole-map recipe is cheaper
            return _top_k_centers_dense(logits, k, peaks, valid, eps)
        p = sigmoid32(flat[idx])
        cell = idx // c
        ys, xs = cell // w, cell % w
        if valid is not None:
            p = np.where(valid[ys, xs], p, np.float32(0))
        if peaks:
            keep = _is_peak_eps(logits, valid, idx, ys, xs, p, eps)
            idx, p = idx[keep], p[keep]
        keep = p > 0
        idx, p = idx[keep], p[keep]
        if exhausted or (idx.size >= k and np.partition(p, idx.size - k)[idx.size - k] >= pt):
            break
        want *= 4
    order = np.lexsort((idx, -p))[:k]
    idx, p = idx[order], p[order]
    cell = idx // c
    return p, cell // w, cell % w, idx % c


def _top_k_centers_dense(logits: np.ndarray, k: int, peaks: bool, valid: np.ndarray | None,
                         eps: np.float32) -> tuple[np.ndarray, ...]:
    """top_k_centers over the whole map: the pooled map from nine shifted views of a -inf padded copy."""
    h, w, c = logits.shape
    p = sigmoid32(logits)
    if valid is not None:
        p = p * valid[:, :, None].astype(np.float32)
    if peaks:
        padded = np.full((h + 2, w + 2, c), -np.inf, np.float32)
        padded[1:-1, 1:-1] = p
        pooled = p.copy()
        for dy in range(3):
            for dx in range(3):
                np.maximum(pooled, padded[dy:dy + h, dx:dx + w], out=pooled)
        p = np.where(np.abs(p - pooled) < eps, p, np.float32(0))
    flat = p.reshape(-1)
    idx = np.flatnonzero(flat > 0)
    vals = flat[idx]
    order = np.lexsort((idx, -vals))[:k]
    idx = idx[order]
    cell = idx // c
    return vals[order], cell // w, cell % w, idx % c


def _is_peak_eps(logits: np.ndarray, valid: np.ndarray | None, idx: np.ndarray, ys: np.ndarray, xs: np.ndarray,
                 p: np.ndarray, eps: np.float32) -> np.ndarray:
    """|p - max of p over the 3x3 neighbourhood (SAME padding)| < eps, in float32, for flat indices `idx`."""
    h, w, c = logits.shape
    flat = logits.reshape(-1)
    pooled = p.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            ny, nx = ys + dy, xs + dx
            inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
            q = sigmoid32(flat[np.where(inside, idx + (dy * w + dx) * c, idx)])
            if valid is not None:
                q = np.where(valid[np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)], q, np.float32(0))
            pooled = np.maximum(pooled, np.where(inside, q, p))
    return np.abs(p - pooled) < eps


def box_iou_matrix(boxes: np.ndarray) -> np.ndarray:
    """Pairwise IoU of [N, 4] boxes given as [ymin, xmin, ymax, xmax] (corners in any order)."""
    y0 = np.minimum(boxes[:, 0], boxes[:, 2])
    x0 = np.minimum(boxes[:, 1], boxes[:, 3])
    y1 = np.maximum(boxes[:, 0], boxes[:, 2])
    x1 = np.maximum(boxes[:, 1], boxes[:, 3])
    area = (y1 - y0) * (x1 - x0)
    ih = np.clip(np.minimum(y1[:, None], y1[None]) - np.maximum(y0[:, None], y0[None]), 0, None)
    iw = np.clip(np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None]), 0, None)
    inter = ih * iw
    union = area[:, None] + area[None] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_out: int) -> np.ndarray:
    """Class-agnostic greedy NMS in score order (tf.image.non_max_suppression's rule); kept indices."""
    order = np.argsort(-scores, kind="stable")
    iou = box_iou_matrix(boxes[order])
    alive = np.ones(order.size, bool)
    keep: list[int] = []
    for i in range(order.size):
        if not alive[i]:
            continue
        keep.append(i)
        if len(keep) == max_out:
            break
        alive &= iou[i] <= iou_threshold
    return order[np.asarray(keep, np.int64)]


def _class_ids(class_ids: Sequence[int], cs: np.ndarray) -> np.ndarray:
    lut = np.asarray(class_ids, np.int64)
    if cs.size and cs.max() >= lut.size:
        raise HarnessError(f"the model predicts class index {int(cs.max())} but the card maps only "
                           f"{lut.size} classes; fix the card's class_ids")
    return lut[cs]


def _batch1(heads: Mapping[str, np.ndarray], name: str, ndim: int) -> np.ndarray:
    a = np.asarray(heads[name])
    if a.ndim == ndim + 1:
        if a.shape[0] != 1:
            raise HarnessError(f"head {name!r} has batch {a.shape[0]}; the decoders take one image")
        a = a[0]
    if a.ndim != ndim:
        raise HarnessError(f"head {name!r} has shape {a.shape}; expected {ndim} dims (batch 1)")
    return a


# --------------------------------------------------------------------------------------------------
# Head layouts


@register_decoder("tfod_centernet", heads=("object_center", "box/scale", "box/offset"))
def decode_tfod_centernet(
    heads: Mapping[str, np.ndarray],
    *,
    class_ids: Sequence[int],
    stride: int = 4,
    input_size: Sequence[int] = (512, 512),
    top_k: int = 100,
    peaks: str = "maxpool",
    nms_iou: float = 0.5,
    true_shape: Sequence[int] | None = None,
    center_mask: str = "tfod",
) -> Detections:
    """TF OD API CenterNet heads: object_center logits, box/scale (h, w) and box/offset (dy, dx) in cells.

    `peaks="maxpool"` is center_net_meta_arch.py's postprocess: sigmoid, centres masked by the true
    shape, 3x3 max-pool peaks with PEAK_EPSILON tolerance on the probabilities, top-k, boxes clipped to
    the grid and normalised by the true shape. `peaks="nms"` is NXP's decode: plain top-k, then
    class-agnostic box NMS at `nms_iou` (evaluate.py). `true_shape` (h, w) is the image content in
    input pixels (letterboxing); default the whole input. Box arithmetic is float32, in TF's order.
    """
    logits = _batch1(heads, "object_center", 3)
    scale = _batch1(heads, "box/scale", 3).astype(np.float32, copy=False)
    offset = _batch1(heads, "box/offset", 3).astype(np.float32, copy=False)
    if peaks not in ("maxpool", "nms"):
        raise HarnessError(f"peaks must be 'maxpool' or 'nms', not {peaks!r}")
    gh, gw, _ = logits.shape
    true = tuple(int(v) for v in (true_shape if true_shape is not None else input_size))
    valid = center_valid_mask((gh, gw), true_shape, stride, center_mask)
    scores, ys, xs, cs = top_k_centers(logits, top_k, peaks == "maxpool", valid)
    hh = np.maximum(scale[ys, xs, 0], np.float32(0))
    ww = np.maximum(scale[ys, xs, 1], np.float32(0))
    cy = ys.astype(np.float32) + offset[ys, xs, 0]
    cx = xs.astype(np.float32) + offset[ys, xs, 1]
    two = np.float32(2)
    boxes = np.stack([
        np.clip(cy - hh / two, 0, gh), np.clip(cx - ww / two, 0, gw),
        np.clip(cy + hh / two, 0, gh), np.clip(cx + ww / two, 0, gw),
    ], axis=1).astype(np.float32)
    boxes = boxes * np.float32(stride) / np.asarray([true[0], true[1], true[0], true[1]], np.float32)
    boxes = np.clip(boxes, 0.0, 1.0).astype(np.float32)
    cat = _class_ids(class_ids, cs)
    if peaks == "nms":
        keep = greedy_nms(boxes, scores, nms_iou, top_k)
        boxes, scores, cat = boxes[keep], scores[keep], cat[keep]
    return Detections(boxes, scores, cat)


@register_decoder("ltrb_centernet", heads=("heatmap", "wh"))
def decode_ltrb_centernet(
    heads: Mapping[str, np.ndarray],
    *,
    class_ids: Sequence[int],
    stride: int = 4,
    input_size: Sequence[int] = (512, 512),
    top_k: int = 100,
) -> Detections:
    """mb3-centernet heads: sigmoid heatmap and (left, top, right, bottom) distances in input pixels.

    Box = (stride*x - l, stride*y - t, stride*x + r, stride*y + b): no half-cell shift, no offset
    head, no clipping (the model card's decoding, which reproduces the original graph exactly).
    """
    hm = _batch1(heads, "heatmap", 3)
    wh = _batch1(heads, "wh", 3)
    scores, ys, xs, cs = top_k_cells(hm, top_k, peaks_only=True)
    ltrb = wh[ys, xs].astype(np.float32)
    py, px = (ys * stride).astype(np.float32), (xs * stride).astype(np.float32)
    in_h, in_w = input_size
    boxes = np.stack([
        (py - ltrb[:, 1]) / in_h, (px - ltrb[:, 0]) / in_w,
        (py + ltrb[:, 3]) / in_h, (px + ltrb[:, 2]) / in_w,
    ], axis=1).astype(np.float32)
    return Detections(boxes, scores.astype(np.float32), _class_ids(class_ids, cs))


@register_decoder("postprocessed",
                  heads=("detection_boxes", "detection_scores", "detection_classes", "num_detections"))
def decode_postprocessed(heads: Mapping[str, np.ndarray], *, top_k: int = 100) -> Detections:
    """TF Hub / TF OD API detection dict: boxes already normalised, classes already label-map ids."""
    boxes = _batch1(heads, "detection_boxes", 2).astype(np.float32)
    scores = _batch1(heads, "detection_scores", 1).astype(np.float32)
    classes = _batch1(heads, "detection_classes", 1)
    n = int(np.asarray(heads["num_detections"]).reshape(-1)[0])
    n = min(n, top_k, scores.shape[0])
    return Detections(boxes[:n], scores[:n], np.rint(classes[:n]).astype(np.int64))
