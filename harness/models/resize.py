"""Resizing exactly as the published pipelines do, in numpy (no OpenCV or TensorFlow at run time).

A model's mAP depends on the pixels it is fed: NXP's evaluate.py feeds `cv2.resize(INTER_LINEAR)`
output, a TF graph feeds `tf.image.resize` output, today's harness fed Pillow's antialiased bilinear.
The three differ by several grey levels on real photos, so replaying a published number needs the
same resize, bit for bit where possible. Every method here is registered under one name (see
`RESIZE_METHODS`) so a card or protocol can name it and the run record can say which was used.

Conventions: images are [H, W, C] arrays (C = 1..4); sizes are given as (width, height) like
OpenCV and Pillow do, to make call sites easy to compare with the code they replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from harness.errors import HarnessError

# OpenCV's fixed-point precision for 8-bit linear resizing (INTER_RESIZE_COEF_BITS in imgproc).
_COEF_BITS = 11
_COEF_ONE = 1 << _COEF_BITS


def _check_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[0] < 1 or a.shape[1] < 1:
        raise HarnessError(f"cannot resize an array of shape {np.shape(image)}; expected [H, W, C]")
    if int(width) < 1 or int(height) < 1:
        raise HarnessError(f"cannot resize to {width}x{height}; both sides must be >= 1")
    return a


# --------------------------------------------------------------------------------------------------
# OpenCV INTER_LINEAR (uint8)


def _cv2_axis(src: int, dst: int, clamp: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First source index and the two 11-bit weights of every destination index along one axis.

    OpenCV computes the position in float32 from a double scale, `(d + 0.5) * src/dst - 0.5`, and
    rounds each weight separately to the nearest multiple of 1/2048. Along x (`clamp`) a position
    outside the image is moved onto the first/last pixel with weights (2048, 0); along y it is not:
    the two rows are clipped into the image but keep their fractional weights, which the vertical
    pass's two truncating products can turn into one grey level less at the top and bottom rows.
    """
    scale = float(src) / float(dst)
    f = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f).astype(np.int64)
    f = (f - s.astype(np.float32)).astype(np.float32)
    if clamp:
        low = s < 0
        f[low], s[low] = 0, 0
        high = s >= src - 1
        f[high], s[high] = 0, src - 1
    w1 = np.rint(f * np.float32(_COEF_ONE)).astype(np.int64)
    w0 = np.rint((np.float32(1) - f) * np.float32(_COEF_ONE)).astype(np.int64)
    return s, w0, w1


def resize_cv2_linear(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)` for uint8 images, in numpy.

    Half-pixel centres, two taps per axis and no antialiasing when shrinking (a 4x shrink samples
    only 2 of every 4 pixels, which is what NXP's evaluate.py fed its model). The arithmetic is
    OpenCV's fixed point: a horizontal pass in int32 (weights scaled by 2048), then a vertical pass
    that drops 4 bits, keeps the high 16 bits of each product and rounds the sum with +2 >> 2, as its
    SIMD code does on x86 and ARM (the scalar tail it uses for the last < 8 values of a row rounds
    `(a + 2**21) >> 22` instead, which this reproduces too). The exact 2x shrink OpenCV routes to
    INTER_AREA gives the same numbers through this path.
    """
    a = _check_image(image, width, height)
    if a.dtype != np.uint8:
        raise HarnessError(f"resize_cv2_linear takes uint8 images, not {a.dtype}")
    h, w, _ = a.shape
    if (h, w) == (height, width):
        return a.copy() if np.ndim(image) == 3 else a[:, :, 0].copy()
    xs, xw0, xw1 = _cv2_axis(w, width, clamp=True)
    ys, yw0, yw1 = _cv2_axis(h, height, clamp=False)
    x1 = np.minimum(xs + 1, w - 1)
    y0, y1 = np.clip(ys, 0, h - 1), np.clip(ys + 1, 0, h - 1)
    used, row_of = np.unique(np.concatenate([y0, y1]), return_inverse=True)
    rows = a[used].astype(np.int32)
    # Horizontal pass over the rows the output needs: int32 sums of two taps, exact (no rounding yet).
    hor = rows[:, xs, :] * xw0[None, :, None].astype(np.int32) + rows[:, x1, :] * xw1[None, :, None].astype(np.int32)
    s0 = hor[row_of[:height]]  # [height, width, c]
    s1 = hor[row_of[height:]]
    b0 = yw0[:, None, None]
    b1 = yw1[:, None, None]
    # Vertical pass, SIMD rounding: int16(S >> 4) * beta, high 16 bits, sum, (+2) >> 2, saturate.
    p0 = np.clip(s0 >> 4, -32768, 32767).astype(np.int64) * b0 >> 16
    p1 = np.clip(s1 >> 4, -32768, 32767).astype(np.int64) * b1 >> 16
    out = (p0 + p1 + 2) >> 2
    out = np.clip(out, 0, 255).astype(np.uint8)
    return out if np.ndim(image) == 3 else out[:, :, 0]


# --------------------------------------------------------------------------------------------------
# TensorFlow bilinear (float32)


def _tf_axis(src: int, dst: int, half_pixel_centers: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower index, upper index and float32 lerp of every output index, as TF's ResizeBilinear kernel.

    scale = float32(src) / float32(dst); with half-pixel centres in = (d + 0.5) * scale - 0.5,
    otherwise (TF1's `resize_images` default, the TF OD API's resizers) in = d * scale.
    """
    scale = np.float32(src) / np.float32(dst)
    d = np.arange(dst, dtype=np.float32)
    pos = (d + np.float32(0.5)) * scale - np.float32(0.5) if half_pixel_centers else d * scale
    pos = pos.astype(np.float32)
    fl = np.floor(pos)
    lo = np.maximum(fl.astype(np.int64), 0)
    hi = np.minimum(np.ceil(pos).astype(np.int64), src - 1)
    return lo, hi, (pos - fl).astype(np.float32)


def resize_tf_bilinear(image: np.ndarray, width: int, height: int, half_pixel_centers: bool = True) -> np.ndarray:
    """`tf.image.resize(image, (height, width), method="bilinear", antialias=False)`: float32 output.

    Half-pixel centres, two taps per axis, no antialiasing, the result never rounded (TF returns
    float32 for any input dtype). `half_pixel_centers=False` is TF1's `tf.image.resize_images` /
    `tf.compat.v1.image.resize_bilinear` (the TF OD API's image resizers use it).
    The arithmetic follows the kernel's order: top = tl + (tr - tl) * xl, then top + (bottom - top) * yl.
    """
    a = _check_image(image, width, height).astype(np.float32)
    h, w, _ = a.shape
    x0, x1, xl = _tf_axis(w, width, half_pixel_centers)
    y0, y1, yl = _tf_axis(h, height, half_pixel_centers)
    xl = xl[None, :, None]
    top_rows, bot_rows = a[y0], a[y1]
    top = top_rows[:, x0] + (top_rows[:, x1] - top_rows[:, x0]) * xl
    bot = bot_rows[:, x0] + (bot_rows[:, x1] - bot_rows[:, x0]) * xl
    out = (top + (bot - top) * yl[:, None, None]).astype(np.float32)
    return out if np.ndim(image) == 3 else out[:, :, 0]


# --------------------------------------------------------------------------------------------------
# Pillow and nearest


def resize_pillow(image: np.ndarray, width: int, height: int, resample: str = "bilinear") -> np.ndarray:
    """Pillow's resize (bilinear by default): with antialiasing when shrinking, the harness's old default.

    Pillow's bilinear widens its triangle filter by the shrink factor, so every source pixel counts;
    that is a different (smoother) input than cv2's or TF's two-tap bilinear.
    """
    from PIL import Image

    filters = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST,
               "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
               "box": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING}
    if resample not in filters:
        raise HarnessError(f"unknown Pillow filter {resample!r}; use one of {sorted(filters)}")
    a = _check_image(image, width, height)
    if a.dtype != np.uint8:
        raise HarnessError(f"resize_pillow takes uint8 images, not {a.dtype}")
    if a.shape[2] == 1:
        out = np.asarray(Image.fromarray(a[:, :, 0]).resize((width, height), filters[resample]))[:, :, None]
    elif a.shape[2] in (3, 4):
        out = np.asarray(Image.fromarray(a).resize((width, height), filters[resample]))
    else:
        out = np.stack([resize_pillow(a[:, :, i], width, height, resample) for i in range(a.shape[2])], axis=2)
    return out if np.ndim(image) == 3 else out[:, :, 0]


def _nearest_axis_pillow(src: int, dst: int) -> np.ndarray:
    """Pillow's NEAREST source indices: a double position started at scale/2 and advanced by adding
    `scale` once per pixel (ImagingScaleAffine), then truncated; OpenCV's INTER_NEAREST_EXACT agrees."""
    step = src / dst
    pos = np.full(dst, step)
    pos[0] = step * 0.5
    pos = np.add.accumulate(pos)  # sequential sums: the same rounding as the C loop
    return np.minimum(pos.astype(np.int64), src - 1)


def _nearest_axis_tf(src: int, dst: int) -> np.ndarray:
    """TF2's `method="nearest"` source indices: floor(float32((d + 0.5) * float32(src / dst)))."""
    scale = np.float32(src) / np.float32(dst)
    pos = (np.arange(dst, dtype=np.float32) + np.float32(0.5)) * scale
    return np.minimum(np.floor(pos).astype(np.int64), src - 1)


def resize_nearest(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest neighbour with half-pixel centres, as Pillow's NEAREST and OpenCV's INTER_NEAREST_EXACT.

    Source index ~ floor((d + 0.5) * src / dst), with their accumulated-double rounding (not OpenCV's
    legacy INTER_NEAREST, floor(d * src / dst), which shifts the image by half a source pixel).
    """
    a = _check_image(image, width, height)
    h, w, _ = a.shape
    out = a[_nearest_axis_pillow(h, height)][:, _nearest_axis_pillow(w, width)]
    return out if np.ndim(image) == 3 else out[:, :, 0]


def resize_tf_nearest(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`tf.image.resize(method="nearest")`: half-pixel centres in float32 (differs from Pillow's NEAREST
    only where a position falls on a pixel edge); keeps the input dtype, as TF does."""
    a = _check_image(image, width, height)
    h, w, _ = a.shape
    out = a[_nearest_axis_tf(h, height)][:, _nearest_axis_tf(w, width)]
    return out if np.ndim(image) == 3 else out[:, :, 0]


# --------------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class ResizeMethod:
    """A named resize: the function, the dtype it returns, and the published code it replays."""

    name: str
    fn: Callable[[np.ndarray, int, int], np.ndarray]
    output: str  # "uint8" or "float32"
    replays: str


RESIZE_METHODS: dict[str, ResizeMethod] = {
    m.name: m for m in (
        ResizeMethod("pillow-bilinear", resize_pillow, "uint8",
                     "PIL Image.resize(BILINEAR): antialiased when shrinking (the harness's historical default)"),
        ResizeMethod("cv2-linear", resize_cv2_linear, "uint8",
                     "cv2.resize(INTER_LINEAR), uint8 fixed point (NXP eiq-model-zoo load_image)"),
        ResizeMethod("tf-bilinear", resize_tf_bilinear, "float32",
                     "tf.image.resize(method='bilinear', antialias=False), half-pixel centres"),
        ResizeMethod("tf1-bilinear", lambda im, w, h: resize_tf_bilinear(im, w, h, half_pixel_centers=False),
                     "float32", "tf.compat.v1.image.resize_images / resize_bilinear(align_corners=False)"),
        ResizeMethod("nearest", resize_nearest, "uint8",
                     "PIL Image.resize(NEAREST) = cv2.resize(INTER_NEAREST_EXACT): half-pixel centres"),
        ResizeMethod("tf-nearest", resize_tf_nearest, "uint8",
                     "tf.image.resize(method='nearest'): half-pixel centres in float32"),
        *(ResizeMethod(f"pillow-{f}", partial(resize_pillow, resample=f), "uint8",
                       f"PIL Image.resize({f.upper()})") for f in ("bicubic", "lanczos", "box", "hamming")),
    )
}
# Names the card's input used before the registry (Pillow filter names): old records still mean them.
_ALIASES = {"bilinear": "pillow-bilinear", "bicubic": "pillow-bicubic", "lanczos": "pillow-lanczos",
            "box": "pillow-box", "hamming": "pillow-hamming"}


def get_resize(name: str) -> ResizeMethod:
    """The registered resize method `name` (HarnessError listing the known ones otherwise)."""
    m = RESIZE_METHODS.get(_ALIASES.get(name, name))
    if m is None:
        raise HarnessError(f"unknown resize method {name!r}; known: {', '.join(RESIZE_METHODS)}")
    return m


def resize(image: np.ndarray, width: int, height: int, method: str = "pillow-bilinear") -> np.ndarray:
    """Resize with the registered method `method` (returns that method's dtype: uint8 or float32)."""
    return get_resize(method).fn(image, width, height)
