"""How sure is a COCO number? Confidence intervals by a bootstrap over images.

Every tool prints AP as a point value, but on 159 or even 5,000 images it is an estimate: another draw of
images would give another number. Here the images are resampled with replacement and AP re-accumulated
per resample (`harness.scoring.accumulate`: the matching is done once, each resample is a weight vector),
which gives an interval for each of the 12 stats, per class if asked, and for the difference between two
models scored on the same images (paired: both see the same resampled images, so the image-to-image
variation they share cancels). The gate and baseline verdicts built on these are in `verdicts`.

Which interval (`METHODS`, the default first). AP on few images is biased upward: the precision envelope
is a running max of a noisy curve. On the 5,000-image synthetic set of tests/test_bootstrap.py the AP of
100 random images is +0.0153 above the full set's on average (0.85 of its standard deviation), of 300
images +0.0071 (0.7). The bootstrap sees about half of it: its replicates average only +0.0070 / +0.0041
above the point (presumably because a sample's curve is already rough, so resampling noise raises its
envelope less than sampling noise raised the population's). "basic" reflects the replicates around the
point, which removes the bias it sees; "basic-widened" then moves the end on the bias side out by that
bias once more and keeps the other end, so the point stays inside and nothing is given up on the side
the bias does not push the truth to. Coverage of the full-set AP by 95% intervals (500 resamples; subsets
of 100 / 300 / 1000 images, 1000 / 300 / 80 of them, binomial se about 0.7 / 1.1 / 2.5 points; "double"
and "extrapolated" on the first 500 of the 100-image subsets; 300 resamples at 1000 images):

    method                      100 img  300 img  1000 img  width at 100  cost (accumulations)
    basic-widened (default)      96.7     97.3     96.2      0.078         B
    basic                        94.6     96.0     93.8      0.071         B
    percentile                   77.0     84.7     90.0      0.071         B
    bca                          89.5     94.0     92.5      0.068         B + n (jackknife)
    half-sampling (basic)        95.0     97.0     95.0      0.072         B
    basic, jackknife bias        82.0     53.3     28.7      0.071         B + n
    double bootstrap, 2b1-b2     95.4     95.0     95.0      0.071         2B
    double, widened              95.6     96.0     95.0      0.073         2B
    extrapolated (n/2, n/4)      97.2     98.3     96.2      0.089         3B

"half-sampling": replicates from halves drawn without replacement (no repeated images) see the same bias
as the bootstrap; the double bootstrap sees a second-level bias (+0.0051 at 100 images) close to the first,
so its correction adds little; extrapolating the bias from halves and quarters as c / n^a covers best but
is 15% wider and three times the work. A studentized interval needs a bootstrap inside each resample (25
times the work at least) and was not tried. Fewer resamples lose about a point (150 resamples at 100
images: basic-widened 95.9, basic 93.5). "basic-widened" is the default for `bootstrap`; `paired_delta`
keeps "basic": a difference of two models on the same images largely cancels their shared bias. Its
coverage of the full-set ΔAP, by subsets of the same 5,000-image set against a degraded sibling
(benchmarks/paired_coverage.py, 200 resamples; 300 / 150 / 40 subsets, binomial se 1.3 / 2.2 / 3.4 points;
tests/test_interval_coverage.py::test_paired_delta_coverage asserts 90-99.5% on a smaller draw):

    sibling (full-set ΔAP)            100 img  300 img  1000 img  width at 100
    drop (-2.13 points)     basic       94.3     92.0     95.0      0.024
                            widened     95.0     93.3     95.0
    near-twin (-0.09)       basic       95.7     92.0     95.0      0.008
                            widened     96.0     92.0     95.0

Misses fall on both sides (drop, 100 images: truth below 1.7%, above 4.0%), so "basic" stays its default.

Every interval contains its point. With many classes the bootstrap's bias can exceed twice its standard
error: the overall AP is a mean over classes, each class's envelope bias adds to it while the noise
averages down (about as 1/sqrt(classes)), and a weak detector (few true positives among many false ones)
makes each class's precision curve noisy. Then more than 97.5% of the replicates lie above the point, and
the reflected ("basic") upper end 2 * point - q(2.5%) falls below the point: on a 5,000-image,
500k-detection, 300-class weak synthetic set the point 0.01223 lay above the reflected [0.00688, 0.01161]
(bias +2.81 se, 1000 resamples; benchmarks/interval_point.py, benchmarks/results/interval_point.json).
Such an interval says "the truth is probably below the point", which the upward bias makes likely, but a
record whose interval excludes its own point reads as a contradiction; so an end that falls short of the
point is moved to it (for every method: percentile and BCa ends can lie on one side of the point too).
That only widens, so no coverage is lost; each stat's `bias` (mean replicate - point) is recorded beside
`se` to show why such an interval is lopsided. (The 80-class set of that script: bias +1.43 se, inside.)
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from statistics import NormalDist

import numpy as np

from harness.common.cores import available_cores
from harness.errors import HarnessError
from harness.scoring.accumulate import STAT_KEYS, Matches, ap_from_weights, fast_stats
from harness.scoring.matching import match_once
from harness.scoring.verdicts import baseline_verdict, quant_drop_verdict

__all__ = ["DEFAULT_METHOD", "METHODS", "STAT_KEYS", "Matches", "ap_from_weights", "baseline_verdict", "bootstrap",
           "class_counts", "match_once", "paired_delta", "quant_drop_verdict", "resample_weights"]

METHODS = ("basic-widened", "basic", "percentile", "bca")
DEFAULT_METHOD = METHODS[0]
_BATCH_VALUES = 2_000_000  # floats per batch of resamples: small batches stay in cache (about 10 on the mirror)


def resample_weights(n_images: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, n_images] counts: how often each image is drawn when n images are drawn with replacement.

    All draws come from one generator call, so the weights depend only on (n_images, resamples, seed).
    """
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_images, size=(resamples, n_images))
    rows = np.arange(resamples)[:, None] * n_images
    return np.bincount((rows + draws).ravel(), minlength=resamples * n_images).reshape(resamples, n_images)


def _replicates(m: Matches, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stats [B, 12] and per-class AP [B, K] for each weight row, in memory-bounded batches."""
    per_row = max(1, m._plan.t_seg.size * 8 + m._plan.base.shape[0] * 2 + int(np.prod(m._plan.shape)) * 8)
    step = max(4, _BATCH_VALUES // per_row)  # at full COCO scale a few at once still beat one at a time
    starts = range(0, len(weights), step)
    threads = min(len(starts), available_cores())
    if threads < 2:
        parts = [fast_stats(m, weights[i:i + step]) for i in starts]
    else:  # numpy lets go of the GIL in its loops: batches on every core (1.8x on 2 cores at full COCO scale)
        with ThreadPoolExecutor(threads, thread_name_prefix="bootstrap") as pool:
            parts = list(pool.map(lambda i: fast_stats(m, weights[i:i + step]), starts))  # in order: same bits
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _jackknife(m: Matches) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-image-out stats, for the BCa acceleration."""
    w = np.ones((m.n_images, m.n_images)) - np.eye(m.n_images)
    return _replicates(m, w)


def _bounds(point: float, reps: np.ndarray, level: float, method: str, jack: np.ndarray | None) -> tuple[float, float]:
    """The (lo, hi) of one statistic's interval from its bootstrap replicates (NaN ones are dropped)."""
    reps = reps[~np.isnan(reps)]
    if reps.size < 2 or not np.isfinite(point):
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    if method == "percentile":
        lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    elif method in ("basic", "basic-widened"):  # reflect the percentiles around the point: removes the bias seen
        q_lo, q_hi = np.quantile(reps, [alpha, 1.0 - alpha])
        lo, hi = 2 * point - q_hi, 2 * point - q_lo
        if method == "basic-widened":  # and reach as far again on the side the bias points to (module doc)
            bias = float(reps.mean()) - point
            lo, hi = (lo - bias, hi) if bias > 0 else (lo, hi - bias)
    else:  # BCa (Efron 1987): percentiles shifted for median bias (z0) and skew (acceleration from jackknife)
        nd = NormalDist()
        below = (np.count_nonzero(reps < point) + 0.5 * np.count_nonzero(reps == point)) / reps.size
        z0 = nd.inv_cdf(min(max(below, 1e-6), 1 - 1e-6))
        j = jack[~np.isnan(jack)] if jack is not None else np.zeros(0)
        d = j.mean() - j if j.size else np.zeros(1)
        denom = 6.0 * float(np.sum(d**2)) ** 1.5
        acc = float(np.sum(d**3)) / denom if denom > 0 else 0.0
        qs = []
        for z in (nd.inv_cdf(alpha), nd.inv_cdf(1 - alpha)):
            qs.append(nd.cdf(z0 + (z0 + z) / (1 - acc * (z0 + z))))
        lo, hi = np.quantile(reps, qs)
    # An interval holds its point (module doc, "Every interval contains its point"): an end the bias
    # correction (or a shifted percentile) moved past the point is brought back to it.
    return float(min(lo, point)), float(max(hi, point))


def _check(resamples: int, level: float, method: str) -> None:
    if method not in METHODS:
        raise HarnessError(f"unknown bootstrap method {method!r}; use one of {', '.join(METHODS)}")
    if not 0.0 < level < 1.0:
        raise HarnessError(f"confidence level must be between 0 and 1, got {level}")
    if resamples < 2:
        raise HarnessError(f"a bootstrap needs at least 2 resamples, got {resamples}")


def _interval(points: Sequence[float] | np.ndarray, reps: np.ndarray, jack: np.ndarray | None, level: float,
              method: str) -> dict[str, dict[str, float]]:
    out = {}
    for s, key in enumerate(STAT_KEYS):
        p = float(points[s])
        col = reps[:, s]
        lo, hi = _bounds(p, col, level, method, None if jack is None else jack[:, s])
        ok = col[~np.isnan(col)]
        out[key] = {"point": p, "lo": lo, "hi": hi, "se": float(ok.std(ddof=1)) if ok.size > 1 else float("nan"),
                    "bias": float(ok.mean()) - p if ok.size else float("nan")}
    return out


def _points(m: Matches) -> list[float]:
    """Exact stats (pycocotools' values), with -1 ("undefined") as NaN like the replicates."""
    return [v if v > -1 else float("nan") for v in ap_from_weights(m).values()]


def _per_class(m: Matches, reps: np.ndarray, jack: np.ndarray | None, level: float, method: str) -> dict:
    point = fast_stats(m, np.ones((1, m.n_images)))[1][0]
    out = {}
    for k, name in enumerate(m.cat_names):
        if np.isnan(point[k]):
            continue
        lo, hi = _bounds(float(point[k]), reps[:, k], level, method, None if jack is None else jack[:, k])
        col = reps[:, k]
        out[name] = {"point": float(point[k]), "lo": lo, "hi": hi,
                     "se": float(np.nanstd(col, ddof=1)), "absent": float(np.mean(np.isnan(col)))}
    return out


def bootstrap(matches: Matches, resamples: int = 1000, level: float = 0.95, seed: int = 0,
              method: str = DEFAULT_METHOD, per_class: bool = False) -> dict:
    """Intervals for the 12 COCO stats by resampling the matched images with replacement.

    `method` is one of `METHODS` (see the module docstring for their coverage).
    Returns {stat: {point, lo, hi, se}, ..., level, method, resamples, seed, images} (stats as fractions,
    like pycocotools; `point` is the exact full-set value; NaN where a stat is undefined, e.g. APs with no
    small objects), and with `per_class` a "per_class" {name: {point, lo, hi, se, absent}} where `absent`
    is the share of resamples that drew no image with that class (those are left out of its interval).
    """
    _check(resamples, level, method)
    if matches.n_images < 2:
        raise HarnessError("a bootstrap over images needs at least 2 images")
    w = resample_weights(matches.n_images, resamples, seed)
    reps, reps_k = _replicates(matches, w)
    jack, jack_k = _jackknife(matches) if method == "bca" else (None, None)
    out: dict = _interval(_points(matches), reps, jack, level, method)
    out.update(level=level, method=method, resamples=resamples, seed=seed, images=matches.n_images)
    if per_class:
        out["per_class"] = _per_class(matches, reps_k, jack_k, level, method)
    return out


def paired_delta(matches_a: Matches, matches_b: Matches, resamples: int = 1000, level: float = 0.95,
                 seed: int = 0, method: str = "basic") -> dict:
    """Interval for each stat's difference b - a (e.g. quantized minus float) on the same images.

    Each resample draws one set of images and scores both models on it, so what makes an image easy or
    hard for both cancels in the difference. Returns the `bootstrap` layout for the difference, plus
    "a" and "b" (each model's own interval from the same resamples) and "unpaired" ({stat: {lo, hi}}: the
    difference's interval had the two been resampled independently, the resample pairing shuffled away),
    so that a reader can see how much the pairing buys.
    """
    _check(resamples, level, method)
    if matches_a.image_ids != matches_b.image_ids:
        raise HarnessError("a paired difference needs both results scored on the same images "
                           f"({matches_a.n_images} vs {matches_b.n_images} images, or different ids)")
    if matches_a.cat_ids != matches_b.cat_ids:
        raise HarnessError("a paired difference needs both results scored against the same categories")
    w = resample_weights(matches_a.n_images, resamples, seed)
    reps_a, _ = _replicates(matches_a, w)
    reps_b, _ = _replicates(matches_b, w)
    pa, pb = np.array(_points(matches_a)), np.array(_points(matches_b))
    jack = None
    if method == "bca":
        jack = _jackknife(matches_b)[0] - _jackknife(matches_a)[0]
    out: dict = _interval(pb - pa, reps_b - reps_a, jack, level, method)
    shuffled = reps_b[np.random.default_rng(seed + 1).permutation(resamples)] - reps_a
    for s, key in enumerate(STAT_KEYS):
        lo, hi = _bounds(float(pb[s] - pa[s]), shuffled[:, s], level, method, None if jack is None else jack[:, s])
        out[key]["unpaired"] = {"lo": lo, "hi": hi}
    out.update(level=level, method=method, resamples=resamples, seed=seed, images=matches_a.n_images)
    out["a"] = _interval(pa, reps_a, None, level, "percentile" if method == "bca" else method)
    out["b"] = _interval(pb, reps_b, None, level, "percentile" if method == "bca" else method)
    return out


def class_counts(gt, image_ids: Sequence[int] | None = None) -> dict[str, dict[str, int]]:
    """Per category (by name, every category of the file): the boxes that count and the images holding them.

    `instances` are non-crowd boxes (crowd regions are ignored by COCO AP, so they are counted apart as
    `crowd`); `images` are the images with at least one such box. A per-class AP row means little without
    them: an AP from 3 boxes in 2 images is noise.
    """
    ids = {i.id for i in gt.images} if image_ids is None else set(image_ids)
    inst: dict[int, int] = {}
    crowd: dict[int, int] = {}
    imgs: dict[int, set[int]] = {}
    for a in gt.dataset["annotations"]:
        if a["image_id"] not in ids:
            continue
        c = a["category_id"]
        if a.get("iscrowd", 0):
            crowd[c] = crowd.get(c, 0) + 1
        else:
            inst[c] = inst.get(c, 0) + 1
            imgs.setdefault(c, set()).add(a["image_id"])
    return {name: {"instances": inst.get(c, 0), "images": len(imgs.get(c, ())), "crowd": crowd.get(c, 0)}
            for c, name in sorted(gt.categories.items())}
