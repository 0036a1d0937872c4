"""Finding object centres in a score map (top-k, 3x3 peaks, the TF OD API's masks) and box NMS."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.errors import HarnessError


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
