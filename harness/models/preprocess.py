"""A model's input recipe as data: how an RGB image becomes the [1,H,W,3] batch, replayable exactly.

Published numbers were measured with specific pixels: NXP's evaluate.py reads with OpenCV (which
applies EXIF orientation), resizes with INTER_LINEAR and stretches; a TF OD API graph letterboxes
(keep_aspect_ratio_resizer with pad_to_max_dimension: zero padding at the bottom/right) and decodes
with the true, unpadded shape. `Preprocess` names every such choice, goes into the run record with
`to_dict()`, and `apply_preprocess` carries it out with numpy and Pillow only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from harness.errors import HarnessError
from harness.models.resize import get_resize

ASPECTS = ("stretch", "letterbox")
CHANNEL_ORDERS = ("rgb", "bgr")
DTYPES = ("float32", "uint8")


@dataclass(frozen=True)
class Preprocess:
    """Everything between a decoded RGB uint8 image and the model's input tensor.

    Order: (EXIF orientation, when reading) -> resize (stretch, or letterbox: the longer side to the
    target, then pad bottom/right with `pad_value` in pixel units) -> channel order -> (x - mean) / std
    -> dtype. `height`/`width` None: the model takes any size and the image is passed as is.
    """

    height: int | None = 512
    width: int | None = 512
    resize: str = "pillow-bilinear"  # a name in harness.models.resize.RESIZE_METHODS
    aspect: str = "stretch"  # "stretch" | "letterbox"
    pad_value: float = 0.0  # letterbox padding, in input pixel units (before mean/std)
    channels: str = "rgb"  # "rgb" | "bgr": the order the model expects
    exif: bool = False  # apply EXIF orientation when reading (cv2.imread does by default; Pillow does not)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    dtype: str = "float32"  # "float32" (0..255 unless mean/std say otherwise) | "uint8"

    def __post_init__(self) -> None:
        get_resize(self.resize)  # unknown names fail here, with the list of known ones
        if self.aspect not in ASPECTS:
            raise HarnessError(f"unknown aspect policy {self.aspect!r}; use one of {', '.join(ASPECTS)}")
        if self.channels not in CHANNEL_ORDERS:
            raise HarnessError(f"unknown channel order {self.channels!r}; use rgb or bgr")
        if self.dtype not in DTYPES:
            raise HarnessError(f"unsupported input dtype {self.dtype!r}; use float32 or uint8")
        if (self.height is None) != (self.width is None):
            raise HarnessError("give both height and width of the model input, or neither (any size)")
        if self.height is not None and (self.height < 1 or self.width < 1):  # type: ignore[operator]
            raise HarnessError(f"model input size {self.width}x{self.height} must be positive")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s == 0 for s in self.std):
            raise HarnessError("mean and std need three values each, and no std may be 0")
        if self.dtype == "uint8" and not self._identity_scaling:
            raise HarnessError("a uint8 input cannot carry mean/std scaling; use dtype float32")

    @property
    def _identity_scaling(self) -> bool:
        return tuple(self.mean) == (0.0, 0.0, 0.0) and tuple(self.std) == (1.0, 1.0, 1.0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        """A preprocessing read back from a record; the keys it lacks keep their defaults.

        Records before version 3 held only {height, width, dtype, resize}, with Pillow filter names
        ("bilinear"): the defaults (stretch, RGB, no EXIF, no scaling) are exactly what those runs did.
        """
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for k in ("mean", "std"):
            if k in kw:
                kw[k] = tuple(float(v) for v in kw[k])
        return cls(**kw)

    def with_model_input(self, height: int | None, width: int | None, dtype: str | None) -> Preprocess:
        """The same recipe for a model that states its own input size (and dtype, when it must be fed one)."""
        h, w = (height, width) if height and width else (self.height, self.width)
        return replace(self, height=h, width=w, dtype=dtype or self.dtype)


@dataclass(frozen=True)
class Prepared:
    """A model input and the geometry needed to read its detections back.

    `true_shape` is the (height, width) of the image content inside the input (smaller than the input
    when letterboxed): the TF OD API decode masks centres and normalises boxes by it.
    """

    batch: np.ndarray  # [1, H, W, 3]
    true_shape: tuple[int, int]
    input_shape: tuple[int, int]
    image_shape: tuple[int, int]


def letterbox_size(image_hw: tuple[int, int], target_hw: tuple[int, int]) -> tuple[int, int]:
    """The resized (height, width) that fits `target_hw` keeping the aspect ratio, the longer side filled.

    As the TF OD API's keep_aspect_ratio_resizer with min = max dimension: scale by target / longer
    side and round each side half to even (Python's round); never below 1 pixel.
    """
    h, w = image_hw
    th, tw = target_hw
    s = min(th / h, tw / w)
    return max(1, min(th, round(h * s))), max(1, min(tw, round(w * s)))


def apply_preprocess(image: np.ndarray, pp: Preprocess) -> Prepared:
    """An RGB uint8 image [H, W, 3] -> the model's batch [1, H, W, 3] plus the true (unpadded) shape."""
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise HarnessError(f"preprocess takes an RGB uint8 image [H, W, 3], not {a.dtype} {a.shape}")
    h, w = a.shape[:2]
    method = get_resize(pp.resize)
    if pp.height is None or pp.width is None:
        out: np.ndarray = a
        true = (h, w)
        size = (h, w)
    elif pp.aspect == "stretch":
        out = a if (h, w) == (pp.height, pp.width) else method.fn(a, pp.width, pp.height)
        true = size = (pp.height, pp.width)
    else:
        size = (pp.height, pp.width)
        true = letterbox_size((h, w), size)
        content = a if (h, w) == true else method.fn(a, true[1], true[0])
        out = np.full((pp.height, pp.width, 3), pp.pad_value, dtype=content.dtype
                      if float(pp.pad_value).is_integer() and 0 <= pp.pad_value <= 255 else np.float32)
        out[: true[0], : true[1]] = content
    if pp.channels == "bgr":
        out = out[:, :, ::-1]
    if pp.dtype == "uint8":
        # a float resize (tf-bilinear) fed to a uint8 model: round half to even
        batch = out.astype(np.uint8) if out.dtype == np.uint8 else np.clip(np.rint(out), 0, 255).astype(np.uint8)
    else:
        batch = out.astype(np.float32)
        if not pp._identity_scaling:
            batch = (batch - np.asarray(pp.mean, np.float32)) / np.asarray(pp.std, np.float32)
    return Prepared(np.ascontiguousarray(batch)[None], (int(true[0]), int(true[1])), (int(size[0]), int(size[1])),
                    (h, w))


def boxes_to_image(boxes: np.ndarray, prepared: Prepared) -> np.ndarray:
    """Boxes normalised to the model input [ymin, xmin, ymax, xmax] -> normalised to the original image.

    Stretching changes nothing; letterboxing scales by input / true size and clips to [0, 1]
    (padding holds no image, so a box reaching into it ends at the image edge).
    """
    (ih, iw), (th, tw) = prepared.input_shape, prepared.true_shape
    if (ih, iw) == (th, tw):
        return np.asarray(boxes, np.float32)
    f = np.asarray([ih / th, iw / tw, ih / th, iw / tw], np.float32)
    return np.clip(np.asarray(boxes, np.float32) * f, 0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# EXIF orientation

EXIF_ORIENTATION_TAG = 0x0112


def exif_orientation(path: str | Path) -> int:
    """The EXIF orientation (1..8) of an image file; 1 (as stored) when it has none or is unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            value = im.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except (OSError, SyntaxError, ValueError):
        return 1
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else 1


def apply_exif_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels [H, W, C] upright for an EXIF orientation, as ImageOps.exif_transpose does.

    cv2.imread applies this by default, Pillow and TF's decode_jpeg do not: the same file can reach a
    model rotated or not, and COCO's boxes are in stored (unrotated) pixels.
    """
    a = np.asarray(image)
    ops = {
        1: lambda x: x,
        2: lambda x: x[:, ::-1],  # mirror left-right
        3: lambda x: x[::-1, ::-1],  # rotate 180
        4: lambda x: x[::-1],  # mirror top-bottom
        5: lambda x: x.swapaxes(0, 1),  # transpose
        6: lambda x: np.rot90(x, -1),  # rotate 90 clockwise
        7: lambda x: x[::-1, ::-1].swapaxes(0, 1),  # transverse
        8: lambda x: np.rot90(x, 1),  # rotate 90 counter-clockwise
    }
    if orientation not in ops:
        raise HarnessError(f"EXIF orientation must be 1..8, not {orientation!r}")
    return np.ascontiguousarray(ops[orientation](a))


def read_rgb_oriented(path: str | Path, exif: bool, expect_size: tuple[int, int] | None = None) -> np.ndarray:
    """`harness.models.images.read_rgb`, then EXIF orientation applied when `exif` (cv2.imread's default).

    The size check against the annotations is on the stored pixels, before any rotation.
    """
    from harness.models.images import read_rgb

    rgb = read_rgb(path, expect_size)
    return apply_exif_orientation(rgb, exif_orientation(path)) if exif else rgb


# --------------------------------------------------------------------------------------------------
# The published recipes, for cards and protocols to name

PRESETS: dict[str, Preprocess] = {
    # NXP eiq-model-zoo centernet load_image: cv2.imread (EXIF applied), BGR->RGB, cv2.resize 512x512
    # INTER_LINEAR, stretched; evaluate.py feeds it as float32 0..255.
    "nxp": Preprocess(512, 512, "cv2-linear", "stretch", exif=True),
    # TF OD API CenterNet 512x512 configs: keep_aspect_ratio_resizer(512, 512, pad_to_max_dimension),
    # TF1 resize_images bilinear, zero padding bottom/right; the graph normalises itself.
    "tfod-letterbox": Preprocess(512, 512, "tf1-bilinear", "letterbox", pad_value=0.0),
    # The harness's historical default: Pillow's antialiased bilinear, stretched.
    "pillow": Preprocess(512, 512, "pillow-bilinear", "stretch"),
}
