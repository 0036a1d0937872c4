"""Reading images and shaping them into a model's input, with Pillow only (no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import HarnessError

# Pillow's names for the resize filters a card may ask for.
_FILTERS = {"bilinear": 2, "nearest": 0, "bicubic": 3, "lanczos": 1, "box": 4, "hamming": 5}


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
        why = "empty file" if path.is_file() and path.stat().st_size == 0 else _first_line(exc)
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0]}" if text else exc.__class__.__name__


@dataclass(frozen=True)
class InputSpec:
    """What a model's input tensor wants: fixed size (or any size), dtype, resize filter."""

    height: int | None = 512  # None: the model takes any size (TF Hub detectors)
    width: int | None = 512
    dtype: str = "float32"  # the array handed to the backend: float32 0..255 or uint8
    resize: str = "bilinear"

    def to_dict(self) -> dict:
        return {"height": self.height, "width": self.width, "dtype": self.dtype, "resize": self.resize}


def prepare(image: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Resize (without keeping the aspect ratio, as the seed models were trained) and batch to [1,H,W,3].

    Quantization is not done here: the TFLite backend quantizes with the tensor's own scale and
    zero point, so the same prepared array feeds a float and an int8 model alike.
    """
    from PIL import Image

    if spec.height is not None and spec.width is not None and image.shape[:2] != (spec.height, spec.width):
        resample = _FILTERS.get(spec.resize)
        if resample is None:
            raise HarnessError(f"unknown resize filter {spec.resize!r}; use one of {sorted(_FILTERS)}")
        image = np.asarray(Image.fromarray(image).resize((spec.width, spec.height), resample))
    return image.astype(spec.dtype, copy=False)[None]
