"""Bootstrap intervals as run records hold them, and the one-line forms the console and report print.

A record stores `bootstrap()`'s dict (stats as fractions) under `results.interval`, with undefined values
as null rather than NaN (JSON has no NaN) and floats rounded to 6 digits; `from_record` gives back the
dict the verdicts read. Records written before intervals existed simply have no `interval`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from harness.common.bulk import gc_paused
from harness.errors import HarnessError

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
SIZE_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def check_options(resamples: int, level: float) -> None:
    """--ci-resamples / --confidence, checked before a model is loaded (0 resamples: no interval)."""
    if resamples != 0 and resamples < 2:
        raise HarnessError(f"--ci-resamples must be 0 (no interval) or at least 2, got {resamples}")
    if not 0.0 < level < 1.0:
        raise HarnessError(f"--confidence is a confidence level between 0 and 1 (e.g. 0.95), got {level:g}")


def results_interval(gt, results: list[dict], image_ids: Sequence[int], resamples: int = DEFAULT_RESAMPLES,
                     level: float = DEFAULT_LEVEL, seed: int = 0) -> dict | None:
    """The record block for a scored results list: every stat's and every class's interval (cut to [0, 1]),
    and the seconds it took; None when `resamples` is 0 or there are fewer than 2 images (no spread)."""
    from harness.scoring.bootstrap import STAT_KEYS, bootstrap
    from harness.scoring.matching import match_once

    check_options(resamples, level)
    if resamples == 0 or len(image_ids) < 2:
        return None
    t0 = time.perf_counter()
    with gc_paused():  # beside a full-COCO results list (3.5M objects) each collection would walk it all again
        interval = bootstrap(match_once(gt, results, image_ids), resamples=resamples, level=level, seed=seed,
                             per_class=True)
    for s in [*(interval[k] for k in STAT_KEYS), *interval.get("per_class", {}).values()]:
        # The (widened) basic interval reflects the replicates around the point, so near AP 0 (a broken model)
        # it can reach below 0: an AP cannot, and cutting the interval to [0, 1] loses no coverage.
        s["lo"], s["hi"] = min(max(s["lo"], 0.0), 1.0), min(max(s["hi"], 0.0), 1.0)
    block = to_record(interval)
    block["seconds"] = round(time.perf_counter() - t0, 3)
    return block


def _clean(v: object) -> object:
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 6)
    if isinstance(v, dict):
        return _clean_dict(v)
    return v


def _clean_dict(d: dict) -> dict:
    return {k: _clean(x) for k, x in d.items()}


def _restore(v: object) -> object:
    if v is None:
        return float("nan")
    if isinstance(v, dict):
        return _restore_dict(v)
    return v


def _restore_dict(d: dict) -> dict:
    return {k: _restore(x) if k in ("point", "lo", "hi", "se", "bias", "absent") or isinstance(x, dict) else x
            for k, x in d.items()}


def to_record(interval: dict) -> dict:
    """A `bootstrap()` or `paired_delta()` dict as JSON can hold it (NaN -> null, 6 digits)."""
    return _clean_dict(interval)


def from_record(block: dict | None) -> dict | None:
    """A record's interval block as the dict the verdicts read (null -> NaN); None stays None."""
    if not isinstance(block, dict) or "level" not in block or "images" not in block:
        return None
    return _restore_dict(block)


def points(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


def bracket(stat: dict | None) -> str:
    """'[lo, hi]' in AP points, or '' when there is no interval for that stat."""
    if not stat or stat.get("lo") is None or stat.get("hi") is None:
        return ""
    if any(isinstance(x, float) and math.isnan(x) for x in (stat["lo"], stat["hi"])):
        return ""
    return f"[{100 * stat['lo']:.2f}, {100 * stat['hi']:.2f}]"


def describe(block: dict) -> str:
    """'95%, bootstrap over 159 images': what an interval is, for the end of a printed line."""
    return f"{100 * float(block['level']):g}%, bootstrap over {block['images']} images"


def headline(block: dict, stat: str = "AP") -> str:
    """'AP 28.50 [21.57, 29.95] (95%, bootstrap over 159 images)'."""
    s = block.get(stat) or {}
    return f"{stat} {points(s.get('point'))} {bracket(s)} ({describe(block)})"
