"""Decisions from intervals: does a quantized model lose too much, does a run agree with a published AP.

Both read the interval dicts of `harness.scoring.bootstrap` (stats as fractions) and speak AP points
(0-100), the unit model cards and gates use. A point value alone cannot say "no evidence either way";
these can, and say how many images would settle it.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from harness.errors import HarnessError

# How the sample size is extrapolated; also returned in the verdicts so that a report can print it.
IMAGES_NEEDED_FORMULA = ("n_needed = ceil(n * (h / |d - P|)^2): the interval's half-width h on the side that faces "
                         "the limit P shrinks as 1/sqrt(n), and the verdict is decided once it is smaller than the "
                         "distance |d - P| from the estimate d to P (assumes d stays where it is and the new images "
                         "come from the same population)")


def _stat_bounds(interval: dict, stat: str, confidence: float | None) -> tuple[float, float, float, float, str]:
    """(point, lo, hi, level, basis) of one stat, as fractions, at the requested two-sided level."""
    if stat not in interval:
        raise HarnessError(f"the interval has no {stat!r}; it holds "
                           f"{', '.join(k for k, v in interval.items() if isinstance(v, dict))}")
    s = interval[stat]
    level = float(interval["level"])
    if confidence is None or math.isclose(confidence, level):
        return s["point"], s["lo"], s["hi"], level, f"bootstrap {interval.get('method', '?')} interval"
    if not 0.0 < confidence < 1.0:
        raise HarnessError(f"confidence must be between 0 and 1, got {confidence}")
    # A different level than the bootstrap was run at: the normal approximation from its standard error.
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    return s["point"], s["point"] - z * s["se"], s["point"] + z * s["se"], confidence, "normal approximation (se)"


def quant_drop_verdict(delta_interval: dict, max_drop_points: float, confidence: float | None = None,
                       stat: str = "AP") -> dict:
    """Gate a quantized sibling on its drop from the float model, with an interval instead of a point.

    `delta_interval` is `paired_delta(float_matches, quant_matches)` (difference quant - float), so the
    drop is -difference, in AP points. With the two-sided interval at `confidence` (default: the level the
    bootstrap was run at; another level uses point +- z * se): "fail" when its whole range lies above
    `max_drop_points` (the drop exceeds P with at least that confidence, one-sided even (1+c)/2), "pass"
    when it lies wholly below P, else "inconclusive" with `images_needed`, the image count at which the
    interval would likely decide (see IMAGES_NEEDED_FORMULA); None when the estimate sits exactly on P.
    """
    point, lo, hi, level, basis = _stat_bounds(delta_interval, stat, confidence)
    d, d_lo, d_hi = -100 * point, -100 * hi, -100 * lo  # drop = float - quant, in points
    p = float(max_drop_points)
    n = int(delta_interval["images"])
    if any(map(math.isnan, (d, d_lo, d_hi))):
        raise HarnessError(f"{stat} is undefined on these images (no ground truth it could be measured on)")
    needed = None
    if d_lo > p:
        verdict = "fail"
    elif d_hi < p:
        verdict = "pass"
    else:
        verdict = "inconclusive"
        half = (d - d_lo) if d > p else (d_hi - d)
        if d != p and half > 0:
            needed = max(n + 1, math.ceil(n * (half / abs(d - p)) ** 2))
    return {"verdict": verdict, "stat": stat, "drop_points": d, "drop_lo": d_lo, "drop_hi": d_hi,
            "max_drop_points": p, "confidence": level, "basis": basis, "images": n, "images_needed": needed,
            "formula": IMAGES_NEEDED_FORMULA}


def baseline_verdict(interval: dict, published_ap: float, published_images: int | None = None,
                     stat: str = "AP") -> dict:
    """Is a measured AP consistent with a published one (`published_ap` in AP points, as cards give it)?

    Without `published_images` the published number is taken as exact: consistent when it lies in the
    measured interval. With it, the published number is an estimate too: the measured per-image spread
    (sd = se * sqrt(n), from the bootstrap) is assumed to hold for the published run's images, so its
    standard error is sd / sqrt(published_images), and each side of the interval widens to
    sqrt(h^2 + (z * se_pub)^2). That treats the two image sets as independent draws from one population;
    when ours is a subset of theirs (a mirror of val2017 against a val2017 number) the true spread of the
    difference is smaller (sd * sqrt(1/n - 1/N)), so the verdict then errs towards "consistent".
    """
    point, lo, hi, level, basis = _stat_bounds(interval, stat, None)
    m, m_lo, m_hi = 100 * point, 100 * lo, 100 * hi
    if any(map(math.isnan, (m, m_lo, m_hi))):
        raise HarnessError(f"{stat} is undefined on these images (no ground truth it could be measured on)")
    n = int(interval["images"])
    se_pub = None
    lo_w, hi_w = m - m_lo, m_hi - m
    if published_images is not None:
        if published_images < 1:
            raise HarnessError(f"published_images must be a positive count, got {published_images}")
        se_pub = 100 * interval[stat]["se"] * math.sqrt(n / published_images)
        z = NormalDist().inv_cdf((1 + level) / 2)
        lo_w, hi_w = math.hypot(lo_w, z * se_pub), math.hypot(hi_w, z * se_pub)
    consistent = m - lo_w <= published_ap <= m + hi_w
    return {"verdict": "consistent" if consistent else "inconsistent", "stat": stat, "measured": m,
            "lo": m - lo_w, "hi": m + hi_w, "published": float(published_ap), "published_images": published_images,
            "published_se": se_pub, "difference": m - published_ap, "level": level, "images": n, "basis": basis,
            "assumption": None if published_images is None else
            "published images drawn independently from the same population, with the measured per-image spread"}
