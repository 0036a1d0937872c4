"""Conventions of the box and category fields a results file may have wrong, each with its correction.

A box correction maps one bbox (and its image's (width, height)) to COCO's absolute [x, y, width, height];
a category correction maps one written category id to the annotation file's (None: no such class).
"""

from __future__ import annotations

from collections.abc import Callable

from harness.analyse.doctor.evidence import BoxFix

SHIFTS = tuple(d for d in range(-10, 11) if d)

BOX_FIXES: dict[str, tuple[BoxFix, str, str]] = {
    "box-xyxy": (lambda b, s: [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                 "boxes are [x1, y1, x2, y2] corners",
                 "write bbox as [x, y, width, height]: width = x2 - x1, height = y2 - y1"),
    "box-normalised": (lambda b, s: [b[0] * s[0], b[1] * s[1], b[2] * s[0], b[3] * s[1]],
                       "boxes are normalised to [0, 1]",
                       "multiply x and width by the image width, y and height by its height (absolute pixels)"),
    "box-yx": (lambda b, s: [b[1], b[0], b[3], b[2]],
               "boxes are [y, x, height, width] (TF's ymin, xmin order)",
               "swap x with y and width with height: COCO's bbox is [x, y, width, height]"),
    "box-center": (lambda b, s: [b[0] - b[2] / 2, b[1] - b[3] / 2, b[2], b[3]],
                   "boxes are [centre x, centre y, width, height]",
                   "write the top-left corner: x = cx - width / 2, y = cy - height / 2"),
    "box-yxyx": (lambda b, s: [b[1], b[0], b[3] - b[1], b[2] - b[0]],
                 "boxes are [ymin, xmin, ymax, xmax] corners (the TF OD API's order, in pixels)",
                 "write [xmin, ymin, xmax - xmin, ymax - ymin]"),
    "box-tf-normalised": (lambda b, s: [b[1] * s[0], b[0] * s[1], (b[3] - b[1]) * s[0], (b[2] - b[0]) * s[1]],
                          "boxes are the TF OD API's detection_boxes as they come: [ymin, xmin, ymax, xmax] "
                          "normalised to [0, 1]",
                          "write [xmin * W, ymin * H, (xmax - xmin) * W, (ymax - ymin) * H] with the image's "
                          "width W and height H"),
}


def _shift(d: int, known: set[int]) -> Callable[[int], int | None]:
    """Category id c read as c - d, where that is an id the file defines."""
    return lambda c: c - d if c - d in known else None


def category_remaps(cats: list[int]) -> dict[str, tuple[str, Callable[[int], int | None], str, str]]:
    """Candidate category fixes: (finding id, remap, what it assumes, fix), by name."""
    pos = {c: i for i, c in enumerate(cats)}
    known = set(cats)
    out: dict[str, tuple[str, Callable[[int], int | None], str, str]] = {}
    for d in SHIFTS:
        out[f"shift{d:+d}"] = (
            "category-offset", _shift(d, known),
            f"category ids are the annotation file's ids {d:+d}",
            f"subtract {d} from every category_id" if d > 0 else f"add {-d} to every category_id")
    out["index0"] = ("category-index", lambda c: cats[c] if 0 <= c < len(cats) else None,
                     f"category ids are class indices 0..{len(cats) - 1}",
                     "map class index i to the annotation file's i-th category id (sorted), e.g. COCO80_IDS[i]")
    out["index1"] = ("category-index", lambda c: cats[c - 1] if 1 <= c <= len(cats) else None,
                     f"category ids are class indices 1..{len(cats)}",
                     "map class index i (1-based) to the (i-1)-th category id (sorted), e.g. COCO80_IDS[i-1]")
    out["slots-as-index"] = (
        "category-index", lambda c: pos[c] + 1 if c in pos else None,
        "a label-map slot (id = index + 1, 90 slots) was read as an index into the sorted category list",
        "for a 90-slot label map the category id is class index + 1; do not map it through the 80-class list")
    return out
