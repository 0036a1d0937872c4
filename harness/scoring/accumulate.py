"""COCO accumulation with a weight per image: the re-run half of a bootstrap over images.

pycocotools scores in two passes. `evaluate()` matches each image's detections to its ground truth per
(category, area range, IoU threshold); that is the expensive part and it does not change when images are
resampled. `accumulate()` turns the matches into precision/recall curves; that is what a resample redoes.
`match_once` runs the first pass once and keeps its result as flat arrays (`Matches`); `ap_from_weights`
redoes the second in vectorised numpy, where an image drawn k times counts k times (its ground truth and
its detections weighted k), so resamples are integer weight vectors rather than copied images. With all
weights 1 it reproduces pycocotools' 12 stats bit for bit (same sort order, same float operations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.errors import HarnessError

# pycocotools' defaults (Params.setDetParams), built the same way so the floats are the same.
IOU_THRS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = (1, 10, 100)
AREAS = ("all", "small", "medium", "large")
STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
_EPS = np.spacing(1)
_T50, _T75 = int(np.flatnonzero(IOU_THRS == 0.5)[0]), int(np.flatnonzero(IOU_THRS == 0.75)[0])


@dataclass(frozen=True)
class Matches:
    """pycocotools' per-image matching of one results list, as arrays (one row per detection).

    Rows are in the order pycocotools' accumulate() visits detections: by category, then score
    descending, ties by image (sorted ids) and by rank in the image. `tp`/`valid` are [area, IoU, row]:
    matched and not ignored / not ignored. Ground truth that counts is kept as sparse (category, area,
    image, count) rows. Image indices refer to `image_ids`.
    """

    image_ids: tuple[int, ...]
    cat_ids: tuple[int, ...]
    cat_names: tuple[str, ...]
    det_cat: np.ndarray  # [N] category index
    det_img: np.ndarray  # [N] image index
    det_rank: np.ndarray  # [N] rank of the detection among its image's detections of its category
    det_score: np.ndarray  # [N]
    tp: np.ndarray  # [A, T, N] bool
    valid: np.ndarray  # [A, T, N] bool
    gt_cat: np.ndarray  # [G] category index
    gt_area: np.ndarray  # [G] area-range index
    gt_img: np.ndarray  # [G] image index
    gt_count: np.ndarray  # [G] non-ignored ground-truth boxes of that (category, area, image)
    _plan: _Plan = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_plan", _Plan(self))

    @property
    def n_images(self) -> int:
        return len(self.image_ids)

    def restrict(self, image_ids: Sequence[int]) -> Matches:
        """The same matching on a subset of its images (matching is per image, so it does not change)."""
        index = {img: i for i, img in enumerate(self.image_ids)}
        missing = [i for i in image_ids if i not in index]
        if missing:
            raise HarnessError(f"{len(missing)} image ids are not in these matches (e.g. {missing[0]})")
        keep_ids = sorted(set(image_ids))
        remap = np.full(self.n_images, -1, np.int64)
        remap[[index[i] for i in keep_ids]] = np.arange(len(keep_ids))
        d = remap[self.det_img] >= 0
        g = remap[self.gt_img] >= 0
        return Matches(tuple(keep_ids), self.cat_ids, self.cat_names, self.det_cat[d], remap[self.det_img[d]],
                       self.det_rank[d], self.det_score[d], self.tp[:, :, d], self.valid[:, :, d],
                       self.gt_cat[g], self.gt_area[g], remap[self.gt_img[g]], self.gt_count[g])


class _Plan:
    """Index arrays, fixed by the matching, that make one re-accumulation a few numpy passes.

    Segments are (area, IoU, category). Only true positives can set the precision envelope (a false
    positive never raises precision and keeps the recall of the true positive before it), so precision is
    computed at true-positive entries only, from cumulative sums of weights reset at each segment's start:
    over the true positives, and over the non-ignored detections. Whether a detection is ignored barely
    depends on the IoU threshold, so the second sum runs over one "usually non-ignored" list per area plus
    sparse corrections per (area, IoU) instead of over all A*T*N flags.

    The non-ignored list is five times longer than the true positives (most detections are false), and only
    its sums at true-positive rows are read. So it is summed between those rows once, as a sparse (true-positive
    row, image) count matrix times the weights (`_Counts`), and the cumulative sum runs over the true-positive
    rows alone; the rows after a category's last true positive are never summed. The weighted ground truth
    and the true positives within maxDets 1 and 10 are count matrices times the weights too. Weights are whole
    numbers (draws), so every such sum is exact in float64 and the order of summation changes no bit.
    """

    def __init__(self, m: Matches) -> None:
        A, T, N = m.tp.shape
        K = len(m.cat_ids)
        self.shape = (A, T, K)
        cat_start = np.searchsorted(m.det_cat, np.arange(K), side="left")  # first row of each category
        at_idx = np.arange(A * T)
        # True positives as (area, IoU, row) in that order, which is also segment order (rows are by category).
        tp_at, tp_row = np.nonzero(m.tp.reshape(A * T, N))
        self.t_seg = at_idx[tp_at] * K + m.det_cat[tp_row]
        self.t_img = m.det_img[tp_row]
        self.rank_masks = [m.det_rank[tp_row] < md for md in MAX_DETS]
        self.t_start = np.searchsorted(self.t_seg, self.t_seg, side="left")
        self.t_seg_ak = (self.t_seg // (T * K)) * K + self.t_seg % K  # (area, category) of each entry
        first_row = cat_start[m.det_cat[tp_row]]  # the segment's first row
        # Non-ignored count = base list of the area (valid at most thresholds) + (valid, not base) - (base, not valid).
        base = m.valid.sum(axis=1) * 2 > T  # [A, N]
        b_a, b_row = np.nonzero(base)
        area = tp_at // T
        # Breakpoints: the rows holding a true positive in an area (any IoU), sorted; blocks: (area, category).
        u_key = np.unique(area * N + tp_row)
        u_block = (u_key // N) * K + m.det_cat[u_key % N]
        # Each base row counts toward the first breakpoint at or after it in its block (none: never read).
        b_u = np.searchsorted(u_key, b_a * N + b_row, side="left")
        inside = b_u < u_key.size
        inside[inside] = u_block[b_u[inside]] == b_a[inside] * K + m.det_cat[b_row[inside]]
        self.base = _Counts(b_u[inside], m.det_img[b_row[inside]], None, u_key.size, len(m.image_ids))
        self.u_start = np.searchsorted(u_block, u_block, side="left")  # each breakpoint's block's first one
        self.t_u = np.searchsorted(u_key, area * N + tp_row)  # each entry's breakpoint
        # Corrections, one signed list: +1 for (valid, not base), -1 for (base, not valid), read only at the
        # entries whose segment has one at or before them.
        plus = (m.valid & ~base[:, None, :]).reshape(A * T, N)
        minus = (~m.valid & base[:, None, :]).reshape(A * T, N)
        c_at, c_row = np.nonzero(plus | minus)
        c_key = c_at * N + c_row
        c_hi = np.searchsorted(c_key, tp_at * N + tp_row, side="right")
        c_lo = np.searchsorted(c_key, tp_at * N + first_row, side="left")
        at = np.flatnonzero(c_hi > c_lo)
        self.corr = (m.det_img[c_row], np.where(plus[c_at, c_row], 1.0, -1.0), c_hi[at], c_lo[at], at)
        # Segments holding true positives, and each one's last entry (its total at maxDets 100).
        self.seg_ids, counts = np.unique(self.t_seg, return_counts=True)
        self.seg_last = np.cumsum(counts) - 1
        n_img, S = len(m.image_ids), A * T * K
        self.ground_truth = _Counts(m.gt_cat * A + m.gt_area, m.gt_img, m.gt_count, K * A, n_img)  # [K*A] per image
        self.within = [_Counts(self.t_seg[mask], self.t_img[mask], None, S, n_img) for mask in self.rank_masks[:-1]]


class _Counts:
    """A sparse [rows, images] matrix of counts; `times(w)` is w @ matrix.T: per weight row, the weighted sums.

    scipy's sparse product where scipy is installed (one pass over the nonzeros, each a row of B weights);
    numpy's bincount over the [B, nonzeros] products where it is not. The values are the same: whole-number
    weights times whole-number counts sum exactly in either order.
    """

    def __init__(self, row: np.ndarray, col: np.ndarray, data: np.ndarray | None, n_rows: int, n_cols: int) -> None:
        key = np.asarray(row, np.int64) * n_cols + np.asarray(col, np.int64)
        if data is None:
            key, counts = np.unique(key, return_counts=True)
            data = counts.astype(np.float64)
        self.row, self.col, self.data = key // n_cols, key % n_cols, np.asarray(data, np.float64)
        self.shape = (n_rows, n_cols)
        self._csr = None

    @property
    def nnz(self) -> int:
        return int(self.row.size)

    def times(self, w: np.ndarray) -> np.ndarray:
        """[B, rows] = w [B, images] @ matrix.T."""
        try:
            from scipy.sparse import csr_matrix
        except ImportError:
            B, n = w.shape[0], self.shape[0]
            index = (np.arange(B)[:, None] * n + self.row).ravel()
            return np.bincount(index, weights=(w[:, self.col] * self.data).ravel(), minlength=B * n).reshape(B, n)
        if self._csr is None:
            self._csr = csr_matrix((self.data, (self.row, self.col)), shape=self.shape)
        return np.ascontiguousarray((self._csr @ np.ascontiguousarray(w.T)).T)


def _wsum(w: np.ndarray, img: np.ndarray, hi: np.ndarray | None, lo: np.ndarray,
          sign: np.ndarray | None = None) -> np.ndarray:
    """Per resample and entry, the (signed) weight of a list's detections in [lo, hi) (zero-prefixed cumsum);
    `hi` None: every entry's own end (the list is the entries)."""
    c = np.zeros((w.shape[0], img.size + 1))
    np.cumsum(w[:, img] if sign is None else w[:, img] * sign, axis=1, out=c[:, 1:])
    return (c[:, 1:] if hi is None else c[:, hi]) - c[:, lo]


@dataclass
class _Curves:
    """B re-accumulations. The envelope is kept as groups: entries of one (resample, segment) whose recall
    reaches the same threshold; group g holds the envelope value for thresholds (prev[g], bucket[g]]."""

    seg: np.ndarray  # [G] resample * S + segment, sorted
    bucket: np.ndarray  # [G] highest recall threshold index the group reaches
    prev: np.ndarray  # [G] the previous group's bucket in the segment, -1 for the first
    value: np.ndarray  # [G] the envelope (best precision at this recall or beyond)
    hits: np.ndarray  # [B, A, T, K, M] weighted true positives per maxDets
    npig: np.ndarray  # [B, A, K] weighted ground truth that counts; 0 marks an absent category


def _accumulate(m: Matches, weights: np.ndarray) -> _Curves:
    """accumulate() for B weight vectors at once ([B, images] integer counts)."""
    w = np.asarray(weights, np.float64)
    if w.ndim != 2 or w.shape[1] != m.n_images:
        raise HarnessError(f"weights must have one entry per image ({m.n_images}), got shape {w.shape}")
    pl = m._plan
    A, T, K = pl.shape
    B, R, S = w.shape[0], REC_THRS.size, A * T * K
    batch = np.arange(B)[:, None]
    npig = pl.ground_truth.times(w).reshape(B, K, A).transpose(0, 2, 1)
    tp = _wsum(w, pl.t_img, None, pl.t_start)  # weighted true positives so far in the segment
    # Weighted non-ignored detections so far (tp + fp): the base list, summed between breakpoints, then along them.
    between = np.zeros((B, pl.base.shape[0] + 1))
    np.cumsum(pl.base.times(w), axis=1, out=between[:, 1:])
    nv = between[:, pl.t_u + 1] - between[:, pl.u_start[pl.t_u]]
    c_img, c_sign, c_hi, c_lo, at = pl.corr
    nv[:, at] += _wsum(w, c_img, c_hi, c_lo, c_sign)
    with np.errstate(divide="ignore", invalid="ignore"):
        rc = tp / npig.reshape(B, A * K)[:, pl.t_seg_ak]  # NaN/inf only in absent segments, masked later
        pr = tp / (nv + _EPS)
    # An entry sets the envelope at every recall threshold <= its recall. An entry of an image drawn 0
    # times repeats the point before it, so it changes nothing and needs no masking.
    bucket = (np.searchsorted(REC_THRS, rc.ravel(), side="right") - 1).clip(0, R - 1)
    seg = (batch * S + pl.t_seg).ravel()
    key = seg * R + bucket  # sorted: entries run by segment, and recall never falls within one
    if key.size == 0:  # no detection of any counted class: every precision envelope stays 0
        gseg = gbucket = prev = np.zeros(0, np.intp)
        value = np.zeros(0)
    else:
        gseg, gbucket, value, prev = _envelope_groups(seg, bucket, key, pr, R)
    hits = np.zeros((B, S, len(MAX_DETS)))
    hits[:, pl.seg_ids, -1] = tp[:, pl.seg_last]  # all detections count at maxDets 100: the segment's total
    for j, counts in enumerate(pl.within):
        hits[..., j] = counts.times(w)
    return _Curves(gseg, gbucket, prev, value, hits.reshape(B, A, T, K, -1), npig)


def _envelope_groups(seg: np.ndarray, bucket: np.ndarray, key: np.ndarray, pr: np.ndarray,
                     R: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Group entries by (segment, recall threshold), best precision first, as a suffix max per segment."""
    first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    gseg, gbucket, value = seg[first], bucket[first], np.maximum.reduceat(pr.ravel(), first)
    # Suffix max within each segment by pointer jumping (a segment holds at most R groups).
    d = 1
    while d < min(R, value.size):
        np.maximum(value[:-d], value[d:], out=value[:-d], where=gseg[:-d] == gseg[d:])
        d *= 2
    starts = np.concatenate(([True], gseg[1:] != gseg[:-1]))
    prev = np.where(starts, -1, np.concatenate(([-1], gbucket[:-1])))
    return gseg, gbucket, value, prev


def precision_recall(m: Matches, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' eval['precision'][..., maxDets 100] as [T,R,K,A] and eval['recall'] as [T,K,A,M].

    Entries are -1 where a (category, area) has no counting ground truth under these weights.
    """
    c = _accumulate(m, np.asarray(weights, np.float64)[None])
    A, T, K = m._plan.shape
    R = REC_THRS.size
    span = c.bucket - c.prev  # thresholds each group covers
    first_r = np.repeat(c.prev + 1 - np.cumsum(span) + span, span)
    envelope = np.zeros((A * T * K, R))
    envelope[np.repeat(c.seg, span), np.arange(span.sum()) + first_r] = np.repeat(c.value, span)
    precision = envelope.reshape(A, T, K, R).transpose(1, 3, 2, 0).copy()  # [A,T,K,R] -> [T,R,K,A]
    npig, hits = c.npig[0], c.hits[0]
    absent = npig == 0  # [A, K]
    precision[np.broadcast_to(absent.T[None, None], precision.shape)] = -1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = (hits / npig[:, None, :, None]).transpose(1, 2, 0, 3).copy()  # [A,T,K,M] -> [T,K,A,M]
    recall[np.broadcast_to(absent.T[None, :, :, None], recall.shape)] = -1.0
    return precision, recall


def _mean(s: np.ndarray) -> float:
    s = s[s > -1]
    return float(np.mean(s)) if s.size else -1.0


def summarize(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """pycocotools' summarize() on [T,R,K,A] / [T,K,A,M] arrays, visiting values in its order."""

    def ap(a: int, t: int | None = None) -> float:
        return _mean(precision[..., a] if t is None else precision[t:t + 1, ..., a])

    def ar(a: int, m: int) -> float:
        return _mean(recall[:, :, a, m])

    vals = (ap(0), ap(0, _T50), ap(0, _T75), ap(1), ap(2), ap(3), ar(0, 0), ar(0, 1), ar(0, 2), ar(1, 2), ar(2, 2),
            ar(3, 2))
    return dict(zip(STAT_KEYS, vals, strict=True))


def ap_from_weights(m: Matches, weights: np.ndarray | None = None) -> dict[str, float]:
    """The 12 COCO stats (fractions, -1 where undefined) with image i counted weights[i] times.

    Bit-identical to pycocotools with all weights 1: the same values, summed in the same order.
    """
    w = np.ones(m.n_images) if weights is None else weights
    return summarize(*precision_recall(m, w))


def fast_stats(m: Matches, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 12 stats [B, 12] (NaN where undefined) and AP per category [B, K] (NaN where absent).

    For resamples ([B, images] weights): the values of `ap_from_weights`, but each mean is taken as sums
    over whole segments, so they agree to ~1e-15 (summation order), far below any interval's width.
    """
    c = _accumulate(m, np.asarray(weights, np.float64))
    A, T, K = m._plan.shape
    B, R = c.npig.shape[0], REC_THRS.size
    psum = np.bincount(c.seg, weights=c.value * (c.bucket - c.prev), minlength=B * A * T * K).reshape(B, A, T, K)
    present = c.npig > 0  # [B, A, K]
    n_present = present.sum(axis=2)  # [B, A]
    with np.errstate(divide="ignore", invalid="ignore"):
        ap_t = np.where(present[:, :, None, :], psum, 0.0).sum(axis=3) / (R * n_present[:, :, None])  # [B, A, T]
        rec = np.where(present[:, :, None, :, None], c.hits / c.npig[:, :, None, :, None], 0.0).sum(axis=3)
        rec /= n_present[:, :, None, None]  # [B, A, T, M]
        per_class = np.where(present[:, 0], psum[:, 0].sum(axis=1) / (R * T), np.nan)
    ap_all = ap_t.mean(axis=2)  # [B, A]
    ar100 = rec[..., 2].mean(axis=2)  # [B, A]
    stats = np.stack([ap_all[:, 0], ap_t[:, 0, _T50], ap_t[:, 0, _T75], ap_all[:, 1], ap_all[:, 2], ap_all[:, 3],
                      rec[:, 0, :, 0].mean(axis=1), rec[:, 0, :, 1].mean(axis=1), ar100[:, 0], ar100[:, 1],
                      ar100[:, 2], ar100[:, 3]], axis=1)
    return stats, per_class
