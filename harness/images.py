"""Reading images and shaping them into a model's input, with Pillow only (no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import HarnessError

# Pillow's names for the resize filters a card may ask for.
_FILTERS = {"bilinear": 2, "nearest": 0, "bicubic": 3, "lanczos": 1, "box": 4, "hamming": 5}


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file into an RGB uint8 array [H, W, 3].

    Raises HarnessError naming the file when it is missing or is not an image, so an eval over
    thousands of files stops with one line that says which file to fix.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise HarnessError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise HarnessError(f"not a readable image: {path} ({exc.__class__.__name__}); "
                           "replace or remove the file") from None


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
