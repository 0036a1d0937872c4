"""Reading images and shaping them into a model's input, with Pillow only (no TensorFlow)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.errors import HarnessError, first_line
from harness.models.preprocess import Preprocess, apply_preprocess

# Resize filters by name (Pillow's codes). "pil-default" calls Image.resize without a filter, as NXP's
# quantization recipe did: the filter Pillow picks then (BICUBIC for RGB since Pillow 7) is its business,
# so a replay on the same Pillow is exact and `resolved_filter` records what it was.
RESIZE_FILTERS: dict[str, int | None] = {
    "pil-default": None, "nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5,
}


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def list_images(inputs: Sequence[str | Path], limit: int | None = None) -> list[Path]:
    """The image files named, a directory standing for its images (by suffix, sorted); fails on a missing path.

    The one rule for "these images" in bench, detect and compare (quantize's NXP replay has its own, on purpose:
    `harness.quantize.calibration.glob_names`).
    """
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if not found:
                raise HarnessError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in directory {p}")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise HarnessError(f"image not found: {p}")
    if not out:
        raise HarnessError("give at least one image file or directory")
    return out[:limit]


def read_rgb(path: str | Path, expect_size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an image file into an RGB uint8 array [H, W, 3].

    Any image Pillow can read becomes RGB rather than an error: grayscale is replicated, CMYK and
    palettes are converted, an alpha channel is dropped (as TF's `decode_image(channels=3)` does, so
    the detections match the TF pipelines), 16-bit samples are scaled to 8 bits (Pillow would clip
    them). Raises HarnessError naming the file when it is missing, empty, truncated or not an image,
    or when its size differs from `expect_size` (width, height): boxes are scaled by the annotation's
    size, so a file of another size is the wrong file, not a detail.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            rgb = _to_rgb(im)
    except FileNotFoundError:
        raise HarnessError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        why = "empty file" if path.is_file() and path.stat().st_size == 0 else first_line(exc, with_type=True)
        raise HarnessError(f"not a readable image: {path} ({why}); replace or remove the file") from None
    if expect_size is not None and (rgb.shape[1], rgb.shape[0]) != tuple(expect_size):
        w, h = expect_size
        raise HarnessError(f"image {path} is {rgb.shape[1]}x{rgb.shape[0]} but the annotations say {w}x{h}; "
                           "wrong file for this annotation file?")
    return rgb


def _to_rgb(im) -> np.ndarray:
    """Pillow image of any mode -> RGB uint8; 16-bit and 32-bit integer samples are scaled, not clipped."""
    if im.mode.startswith("I;16") or im.mode == "I":
        deep = np.asarray(im).astype(np.uint32)
        bits = 16 if im.mode.startswith("I;16") or deep.max(initial=0) < 1 << 16 else 32
        gray = (deep >> (bits - 8)).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode == "RGB":
        im.load()  # decode now, inside the caller's error handling
        return np.asarray(im)
    return np.asarray(im.convert("RGB"))


# The card's input description used to be a four-field InputSpec; it is now the whole recipe.
InputSpec = Preprocess


def prepare(image: np.ndarray, spec: Preprocess) -> np.ndarray:
    """The [1,H,W,3] batch alone of `apply_preprocess` (for callers that need no geometry back).

    Quantization is not done here: the TFLite backend quantizes with the tensor's own scale and
    zero point, so the same prepared array feeds a float and an int8 model alike.
    """
    return apply_preprocess(image, spec).batch


def pillow_batch(image: np.ndarray, size: tuple[int, int], dtype: str, resize_filter: str) -> np.ndarray:
    """Resize with a Pillow filter by RESIZE_FILTERS name (stretched) and batch to [1,H,W,3].

    For calibration recipes, which name Pillow filters, "pil-default" (no filter argument) included.
    """
    from PIL import Image

    h, w = size
    if image.shape[:2] != (h, w):
        resample = RESIZE_FILTERS[check_filter(resize_filter)]
        im = Image.fromarray(image)
        image = np.asarray(im.resize((w, h)) if resample is None else im.resize((w, h), resample))
    return image.astype(dtype, copy=False)[None]


def check_filter(name: str) -> str:
    """`name` if it is a RESIZE_FILTERS key; else a HarnessError listing them."""
    if name not in RESIZE_FILTERS:
        raise HarnessError(f"unknown resize filter {name!r}; use one of {', '.join(RESIZE_FILTERS)}")
    return name


def resolved_filter(name: str) -> str:
    """The filter a resize really uses: for "pil-default", found by comparing with each named filter."""
    from PIL import Image

    if RESIZE_FILTERS[check_filter(name)] is not None:
        return name
    probe = Image.fromarray(np.random.default_rng(0).integers(0, 256, (13, 11, 3), dtype=np.uint8))
    default = np.asarray(probe.resize((7, 5)))
    for other, code in RESIZE_FILTERS.items():
        if code is not None and np.array_equal(default, np.asarray(probe.resize((7, 5), code))):
            return other
    return "unknown"
