"""The results-file doctor's checks that are not about one convention of the box or category fields.

Each check reads the entries (and the ground truth's image list and sizes) and returns what it found:
impossible boxes (a negative or zero width or height, a box far outside its image), scores that cannot
rank (all equal, or heavily tied), image ids in another numbering (file-name numbers, positions in the
image list), boxes in the model's input frame instead of the image's, and nothing to score at all.
Candidate corrections are returned as functions over entries, so the caller scores them like any other
correction and can apply several together.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence

from harness.analyse.doctor.evidence import BoxFix
from harness.scoring.coco import CocoGroundTruth

# A box is outside its image when it passes an edge by more than this many pixels or this fraction of the
# side (a decoder that does not clip may pass it by a pixel or two); reported when this fraction of boxes is.
OUTSIDE_PX = 2.0
OUTSIDE_FRACTION_OF_SIDE = 0.02
OUTSIDE_SHARE = 0.01
# Scores are "tied" when a file holds at most TIED_VALUES distinct scores, at least TIED_PER_VALUE detections
# each on average: the ranking COCO AP is computed from is then mostly the file's order, not the model's.
TIED_VALUES = 20
TIED_PER_VALUE = 5
# Square input sides people run detectors at: boxes left in that frame instead of the original image's.
# COCO eval's detections per image (published AP keeps this many of each image, best first).
MAX_DETS = 100
INPUT_SIDES = (256, 300, 320, 384, 416, 448, 512, 608, 640, 768, 800, 1024)


# --------------------------------------------------------------------------------------------------
# Impossible boxes


def box_faults(entries: Sequence[dict], sizes: dict[int, tuple[int, int]]) -> dict[str, int]:
    """Counts of boxes with a negative size, a zero size, and those outside their image (known images only)."""
    neg = zero = outside = 0
    for r in entries:
        x, y, w, h = r["bbox"]
        neg += w < 0 or h < 0
        zero += (w == 0 or h == 0) and not (w < 0 or h < 0)
        size = sizes.get(r["image_id"])
        if size is None:
            continue
        iw, ih = size
        mx, my = max(OUTSIDE_PX, OUTSIDE_FRACTION_OF_SIDE * iw), max(OUTSIDE_PX, OUTSIDE_FRACTION_OF_SIDE * ih)
        x0, x1, y0, y1 = min(x, x + w), max(x, x + w), min(y, y + h), max(y, y + h)
        outside += x0 < -mx or y0 < -my or x1 > iw + mx or y1 > ih + my
    return {"negative": neg, "zero": zero, "outside": outside}


# Readings of a box with a negative width or height: the size's sign lost (the corner is right), or the
# box described from its other corner (x is the right edge). Positive boxes are unchanged by both.
SIGN_FIXES: dict[str, tuple[BoxFix, str]] = {
    "size-sign": (lambda b, s: [b[0], b[1], abs(b[2]), abs(b[3])],
                  "take the absolute width and height (the corner is right, the sign of the size is not)"),
    "other-corner": (lambda b, s: [min(b[0], b[0] + b[2]), min(b[1], b[1] + b[3]), abs(b[2]), abs(b[3])],
                     "write the top-left corner and a positive size: x = min(x1, x2), width = |x2 - x1|"),
}


def clip_box(b: list[float], s: tuple[int, int]) -> list[float]:
    """The part of a box inside its image (COCO's own ground truth never leaves the image)."""
    x0, y0 = min(max(b[0], 0.0), s[0]), min(max(b[1], 0.0), s[1])
    x1, y1 = min(max(b[0] + b[2], 0.0), s[0]), min(max(b[1] + b[3], 0.0), s[1])
    return [x0, y0, x1 - x0, y1 - y0]


# --------------------------------------------------------------------------------------------------
# Scores


def score_ties(entries: Sequence[dict]) -> tuple[str, str] | None:
    """(kind, evidence) when the scores cannot rank the detections: all equal, or a handful of values; else None.

    Exact duplicates are left out first (they tie by being copies: a finding of their own). A quantized
    model's scores (256 levels) still rank; a score rounded to one decimal or a per-class constant does not.
    """
    entries = dedupe(list(entries))
    if len(entries) < 2:
        return None
    values = Counter(r["score"] for r in entries)
    if len(values) == 1:
        return "constant", f"all {len(entries)} scores are {next(iter(values)):g}"
    if len(values) > TIED_VALUES or len(entries) < TIED_PER_VALUE * len(values):
        return None
    common, n = values.most_common(1)[0]
    return "tied", f"only {len(values)} distinct scores in {len(entries)} detections ({n} are {common:g})"


# --------------------------------------------------------------------------------------------------
# Image ids in another numbering


def image_id_maps(gt: CocoGroundTruth) -> dict[str, tuple[dict[int, int], str]]:
    """Numberings people use instead of the annotation file's image ids: name -> (their id -> image id, what)."""
    listed = [int(i["id"]) for i in gt.dataset["images"]]
    ordered = sorted(listed)
    maps: dict[str, tuple[dict[int, int], str]] = {
        "position0": ({n: i for n, i in enumerate(listed)}, "positions 0..N-1 in the annotation file's image list"),
        "position1": ({n + 1: i for n, i in enumerate(listed)}, "positions 1..N in the annotation file's image list"),
    }
    if ordered != listed:
        maps["sorted0"] = ({n: i for n, i in enumerate(ordered)}, "positions 0..N-1 in the image ids, sorted")
    numbers: dict[int, int] = {}
    for info in gt.images:
        digits = re.findall(r"\d+", info.file_name.rsplit(".", 1)[0])
        if digits:
            numbers.setdefault(int(digits[-1]), info.id)
    if len(numbers) == len(gt.images) and any(k != v for k, v in numbers.items()):
        maps["file-name"] = (numbers, "the numbers in the image file names")
    return {k: v for k, v in maps.items() if any(a != b for a, b in v[0].items())}


def remap_images(entries: Sequence[dict], mapping: dict[int, int]) -> list[dict]:
    return [{**r, "image_id": mapping[r["image_id"]]} for r in entries if r["image_id"] in mapping]


# --------------------------------------------------------------------------------------------------
# Boxes in the model's input frame


def frame_fixes() -> dict[str, tuple[BoxFix, str]]:
    """Boxes left in a square input frame of side S: stretched, letterboxed at the top left, or centred."""
    out: dict[str, tuple[BoxFix, str]] = {}
    for side in INPUT_SIDES:
        def stretched(b, s, side=side):
            fx, fy = s[0] / side, s[1] / side
            return [b[0] * fx, b[1] * fy, b[2] * fx, b[3] * fy]

        def letterbox(b, s, side=side):
            k = max(s) / side
            return [v * k for v in b]

        def centred(b, s, side=side):
            k = max(s) / side
            px, py = (side - s[0] / k) / 2, (side - s[1] / k) / 2
            return [(b[0] - px) * k, (b[1] - py) * k, b[2] * k, b[3] * k]

        out[f"{side}-stretch"] = (stretched, f"the {side}x{side} input frame (the image stretched to it)")
        out[f"{side}-letterbox"] = (letterbox, f"the {side}x{side} input frame (the image letterboxed at its top left)")
        out[f"{side}-centred"] = (centred, f"the {side}x{side} input frame (the image letterboxed in its centre)")
    return out


def fits_frame(entries: Sequence[dict], side: int) -> bool:
    """Whether every box lies inside a side x side square (a box in that frame must)."""
    return all(v >= -OUTSIDE_PX for r in entries for v in r["bbox"][:2]) and all(
        r["bbox"][0] + r["bbox"][2] <= side + OUTSIDE_PX and r["bbox"][1] + r["bbox"][3] <= side + OUTSIDE_PX
        for r in entries)


# --------------------------------------------------------------------------------------------------
# List-level corrections


def dedupe(entries: list[dict]) -> list[dict]:
    """Each detection once: exact repeats (image, category, box to 0.01 px, score) dropped."""
    seen: set[tuple] = set()
    unique = []
    for r in entries:
        key = (r["image_id"], r["category_id"], tuple(round(v, 2) for v in r["bbox"]), round(r["score"], 6))
        if key not in seen:
            seen.add(key)
            unique.append(r)
    return unique


def cap(entries: list[dict]) -> list[dict]:
    """The MAX_DETS best-scored detections of each image."""
    by_image: dict[int, list[dict]] = defaultdict(list)
    for r in entries:
        by_image[r["image_id"]].append(r)
    return [r for rs in by_image.values() for r in sorted(rs, key=lambda r: -r["score"])[:MAX_DETS]]
