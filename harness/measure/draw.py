"""Boxes and labels on pictures, with Pillow only, so a board can annotate what its model sees.

Colours are a pure function of the COCO category id (the same class looks the same in every picture,
run and report); label text is black or white, whichever contrasts more with its background; boxes
are clipped to the image, so a box that runs off the picture is drawn along the border it crosses.
Ground truth is drawn in black-and-white dashes, which show on any background and never look like a
class colour.
"""

from __future__ import annotations

import colorsys
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)

# The 80 official COCO category names by official id (ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 are unused).
COCO_NAMES: dict[int, str] = {
    1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 5: "airplane", 6: "bus", 7: "train", 8: "truck",
    9: "boat", 10: "traffic light", 11: "fire hydrant", 13: "stop sign", 14: "parking meter", 15: "bench",
    16: "bird", 17: "cat", 18: "dog", 19: "horse", 20: "sheep", 21: "cow", 22: "elephant", 23: "bear",
    24: "zebra", 25: "giraffe", 27: "backpack", 28: "umbrella", 31: "handbag", 32: "tie", 33: "suitcase",
    34: "frisbee", 35: "skis", 36: "snowboard", 37: "sports ball", 38: "kite", 39: "baseball bat",
    40: "baseball glove", 41: "skateboard", 42: "surfboard", 43: "tennis racket", 44: "bottle",
    46: "wine glass", 47: "cup", 48: "fork", 49: "knife", 50: "spoon", 51: "bowl", 52: "banana", 53: "apple",
    54: "sandwich", 55: "orange", 56: "broccoli", 57: "carrot", 58: "hot dog", 59: "pizza", 60: "donut",
    61: "cake", 62: "chair", 63: "couch", 64: "potted plant", 65: "bed", 67: "dining table", 70: "toilet",
    72: "tv", 73: "laptop", 74: "mouse", 75: "remote", 76: "keyboard", 77: "cell phone", 78: "microwave",
    79: "oven", 80: "toaster", 81: "sink", 82: "refrigerator", 84: "book", 85: "clock", 86: "vase",
    87: "scissors", 88: "teddy bear", 89: "hair drier", 90: "toothbrush",
}

_GOLDEN = 0.618033988749895  # hue step that spreads consecutive ids around the colour wheel


def class_name(category_id: int, names: dict[int, str] | None = None) -> str:
    """The category's name (from `names`, else the official table), or "class N" for an unknown id."""
    cid = int(category_id)
    return (names or COCO_NAMES).get(cid) or COCO_NAMES.get(cid) or f"class {cid}"


@functools.lru_cache(maxsize=512)
def class_colour(category_id: int) -> RGB:
    """A saturated colour fixed by the id alone: hue by golden-ratio steps, three saturations, two values."""
    cid = int(category_id)
    hue = (cid * _GOLDEN) % 1.0
    sat = (0.95, 0.6, 0.85)[cid % 3]
    val = (1.0, 0.75)[cid % 2]
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return round(r * 255), round(g * 255), round(b * 255)


def _luminance(c: RGB) -> float:
    """WCAG relative luminance of an sRGB colour."""
    def lin(v: int) -> float:
        s = v / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = c
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def contrast_ratio(a: RGB, b: RGB) -> float:
    """WCAG contrast ratio (1..21) between two colours."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_colour(background: RGB) -> RGB:
    """Black or white, whichever reads better on `background` (never below 4.5:1 for any colour)."""
    return BLACK if contrast_ratio(BLACK, background) >= contrast_ratio(WHITE, background) else WHITE


@dataclass(frozen=True)
class Box:
    """One box to draw, in pixels of the picture it is drawn on: [xmin, ymin, xmax) x [ymin, ymax)."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float
    label: str = ""
    colour: RGB = WHITE
    dashed: bool = False  # ground-truth style: black and white dashes, label on white


def prediction_box(xyxy: Sequence[float], category_id: int, score: float | None,
                   names: dict[int, str] | None = None) -> Box:
    """A prediction in its class colour, labelled "name 0.87"."""
    label = class_name(category_id, names) + ("" if score is None else f" {score:.2f}")
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    return Box(x0, y0, x1, y1, label=label, colour=class_colour(category_id))


def truth_box(xyxy: Sequence[float], category_id: int, names: dict[int, str] | None = None,
              crowd: bool = False) -> Box:
    """A ground-truth box in the dashed style, labelled with its class name."""
    label = class_name(category_id, names) + (" (crowd)" if crowd else "")
    x0, y0, x1, y1 = (float(v) for v in xyxy)
    return Box(x0, y0, x1, y1, label=label, colour=WHITE, dashed=True)


def line_width(width: int, height: int) -> int:
    """Thick enough to see on a thumbnail, thin enough not to hide small objects."""
    return max(2, round(min(width, height) / 160))


@functools.lru_cache(maxsize=16)
def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: a scalable font
    except TypeError:  # older Pillow on a board: the fixed bitmap font
        return ImageFont.load_default()


def font_size(width: int, height: int) -> int:
    return max(11, round(min(width, height) / 30))


def _clip(box: Box, width: int, height: int) -> tuple[int, int, int, int] | None:
    """Integer corners (inclusive) of the box inside the picture; None when nothing of it is inside."""
    if not np.isfinite([box.xmin, box.ymin, box.xmax, box.ymax]).all():
        return None
    # Rounded, not floored and ceiled: 384.00000000000006 (0.8 - 0.3 in floating point) is pixel edge 384.
    x0 = max(0, round(box.xmin))
    y0 = max(0, round(box.ymin))
    x1 = min(width - 1, round(box.xmax) - 1)
    y1 = min(height - 1, round(box.ymax) - 1)
    if x1 < x0 or y1 < y0:
        return None
    return x0, y0, x1, y1


def _dashed_rectangle(draw, corners: tuple[int, int, int, int], width: int) -> None:
    """An outline of alternating white and black dashes, drawn inward from the corners like Pillow's."""
    x0, y0, x1, y1 = corners
    dash = max(4, 3 * width)
    w = min(width, x1 - x0 + 1, y1 - y0 + 1)

    def run(a: int, b: int, rect) -> None:
        for k, start in enumerate(range(a, b + 1, dash)):
            draw.rectangle(rect(start, min(b, start + dash - 1)), fill=(WHITE, BLACK)[k % 2])

    run(x0, x1, lambda s, e: (s, y0, e, y0 + w - 1))  # top
    run(x0, x1, lambda s, e: (s, y1 - w + 1, e, y1))  # bottom
    run(y0, y1, lambda s, e: (x0, s, x0 + w - 1, e))  # left
    run(y0, y1, lambda s, e: (x1 - w + 1, s, x1, e))  # right


def draw_boxes(image, boxes: Sequence[Box], *, width: int | None = None, text_size: int | None = None):
    """A copy of `image` (PIL image or uint8 [H,W,3] array) with the boxes drawn, labels on top of all boxes.

    Boxes are drawn in the given order and labels after every outline, so no outline crosses a label.
    A label sits just above its box, or inside its top edge when there is no room above, and is shifted
    left to stay in the picture.
    """
    from PIL import Image, ImageDraw

    im = Image.fromarray(np.asarray(image, np.uint8)) if isinstance(image, np.ndarray) else image.copy()
    im = im.convert("RGB")
    w, h = im.size
    lw = width or line_width(w, h)
    font = _font(text_size or font_size(w, h))
    draw = ImageDraw.Draw(im)
    placed = []
    for box in boxes:
        corners = _clip(box, w, h)
        if corners is None:
            continue
        if box.dashed:
            _dashed_rectangle(draw, corners, lw)
        else:
            draw.rectangle(corners, outline=box.colour, width=lw)
        if box.label:
            placed.append((box, corners))
    for box, (x0, y0, _, _) in placed:
        _label(draw, font, box, x0, y0, w, h)
    return im


def _label(draw, font, box: Box, x0: int, y0: int, width: int, height: int) -> None:
    pad = 2
    left, top, right, bottom = draw.textbbox((0, 0), box.label, font=font)
    tw, th = right - left, bottom - top
    lw_, lh = tw + 2 * pad, th + 2 * pad
    ly = y0 - lh if y0 - lh >= 0 else y0
    lx = max(0, min(x0, width - lw_))
    ly = max(0, min(ly, height - lh))
    fill = WHITE if box.dashed else box.colour
    draw.rectangle((lx, ly, lx + lw_ - 1, ly + lh - 1), fill=fill)
    draw.text((lx + pad - left, ly + pad - top), box.label, fill=text_colour(fill), font=font)


def caption(image, text: str, *, text_size: int | None = None, background: RGB = (32, 32, 32)):
    """The image with a caption bar above it (names the panels of a gallery picture).

    The bar's height depends on the font only, not on the text, so panels side by side stay aligned;
    text too wide for the image is cut short with "...".
    """
    from PIL import Image, ImageDraw

    w, h = image.size
    font = _font(text_size or max(11, min(16, w // 30)))
    probe = ImageDraw.Draw(image)
    _, top, _, bottom = probe.textbbox((0, 0), "Ag|", font=font)
    bar = int(bottom - top) + 8
    while text and probe.textlength(text, font=font) > w - 8:  # "..." not "…": old bitmap fonts are latin-1
        text = text[:-4] + "..." if len(text) > 4 else ""
    out = Image.new("RGB", (w, h + bar), background)
    out.paste(image, (0, bar))
    ImageDraw.Draw(out).text((4, 4 - top), text, fill=text_colour(background), font=font)
    return out


def side_by_side(panels: Sequence, gap: int = 4, background: RGB = (255, 255, 255)):
    """Panels left to right, tops aligned, separated by a `gap`-pixel strip."""
    from PIL import Image

    width = sum(p.size[0] for p in panels) + gap * (len(panels) - 1)
    height = max(p.size[1] for p in panels)
    out = Image.new("RGB", (width, height), background)
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.size[0] + gap
    return out
