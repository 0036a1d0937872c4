"""The pixels the harness feeds a model are the ones its card prescribes: stand-ins whose answers depend on them.

The synthetic stand-ins elsewhere answer the same whatever they are fed; these do not (tests/synthetic.py):

- echo models (mb3-centernet contract, float32 and int8 input) hand back in their heatmap the exact pixels
  they received, after the runtime's own quantization; compared with pixels this file prepares itself from
  the recipe in ../shared/mirror/models/mb3-centernet/MODEL_CARD.md (Pillow BILINEAR to 512x512, RGB,
  float 0..255; int8 input q = pixel - 128);
- a red-square detector (mb3 heads, non-square 384x256 input) finds pure-red (255, 0, 0) squares and nothing
  else, so `harness eval` scores AP 1.0 on images of red squares only when they reach it upright, RGB, 0..255;
- NXP's export (tests/synthetic.make_nxp_tflite) returns its preprocessed input, so the pixels of the `nxp`
  protocol can be compared with cv2.resize INTER_LINEAR, what NXP's evaluate.py feeds.

Each check returns the quantity it measures, and each test also measures it with a deliberately broken input
path (INPUT_FAULTS, patched around the public `Pipeline.prepare` / `Pipeline.predict`, so the faults do not
depend on how the harness prepares images inside) and asserts the check then fails.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from synthetic import echo_pixels, make_echo_tflite, make_nxp_tflite, make_red_square_coco, make_red_square_tflite

from harness.cli import main as harness_main
from harness.models.pipeline import Pipeline
from harness.models.zoo import get_card

# --------------------------------------------------------------------------------------------------
# Faults of the input path, as patches of the public Pipeline methods


@dataclass(frozen=True)
class Fault:
    method: str  # the Pipeline method patched
    patch: Callable  # real method -> broken method


def _on_batch(fn: Callable[[np.ndarray], np.ndarray]) -> Callable:
    """A prepare whose batch goes through `fn` (Pipeline.prepare returns the batch with its geometry)."""
    def patch(prepare):
        def broken(self, image):
            prepared = prepare(self, image)
            return dataclasses.replace(prepared, batch=np.ascontiguousarray(fn(prepared.batch)))
        return broken
    return patch


def _resize_first(resize: Callable[[np.ndarray, int, int], np.ndarray]) -> Fault:
    """A prepare that resizes with `resize(image, width, height)` itself; the harness then has nothing to resize."""
    def patch(prepare):
        def broken(self, image):
            _, h, w, _ = prepare(self, image).batch.shape
            return prepare(self, np.ascontiguousarray(resize(image, w, h)))
        return broken
    return Fault("prepare", patch)


def _pillow(filter_name: str):
    def resize(image, width, height):
        from PIL import Image

        return np.asarray(Image.fromarray(image).resize((width, height), getattr(Image.Resampling, filter_name)))
    return resize


def _cv2_linear(image, width, height):
    import cv2

    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


INPUT_FAULTS: dict[str, Fault] = {
    "channels swapped (BGR)": Fault("prepare", _on_batch(lambda b: b[..., ::-1])),
    "pixels in [0, 1]": Fault("prepare", _on_batch(lambda b: b / np.float32(255))),
    # width and height swapped: the image reaches the model transposed (same shape, so no shape check sees it)
    "width/height transposed": Fault("prepare", lambda prepare: lambda self, image: prepare(
        self, np.ascontiguousarray(image.transpose(1, 0, 2)))),
    "nearest resize": _resize_first(_pillow("NEAREST")),
    "cv2 INTER_LINEAR instead of Pillow BILINEAR": _resize_first(_cv2_linear),
    "Pillow BILINEAR instead of cv2 INTER_LINEAR": _resize_first(_pillow("BILINEAR")),
    # the backend quantizing with zero point 0 instead of the input tensor's -128 (scale 1) is the same as the
    # right quantization of pixels shifted by +128
    "int8 zero point 0 instead of -128": Fault("prepare", _on_batch(lambda b: b.astype(np.float32) + np.float32(128))),
}


def measured_with(fault: str | None, monkeypatch: pytest.MonkeyPatch, measure: Callable[[], float]) -> float:
    """`measure()` through the harness as it is (fault None) or with one of INPUT_FAULTS patched in."""
    if fault is None:
        return measure()
    f = INPUT_FAULTS[fault]
    with monkeypatch.context() as m:
        m.setattr(Pipeline, f.method, f.patch(getattr(Pipeline, f.method)))
        return measure()


def textured_image(width: int = 900, height: int = 700) -> np.ndarray:
    """A deterministic RGB uint8 test image: per-channel gradients under noise (every resize filter differs on it)."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width * 200, y / height * 200, (x + y) / (width + height) * 120], axis=2)
    return np.clip(base + rng.normal(0, 30, (height, width, 3)), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# Echo models: the pixels the mb3-centernet cards feed

# Mean absolute difference, in grey levels, between what the echo model received and the card's recipe.
# Measured clean: 5e-6 (float32 and int8 alike). Faults measured on textured_image(): channels swapped 31.9,
# [0, 1] 86.8, transposed 49.0, nearest 17.7, cv2 instead of Pillow 7.5, int8 zero point 0 119.0 levels.
FED_ERROR_MAX = 0.5


@pytest.fixture(scope="session")
def echo_models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("echo")
    return {"mb3-centernet-f32": make_echo_tflite(d / "echo_f32.tflite"),
            "mb3-centernet-int8": make_echo_tflite(d / "echo_int8.tflite", int8=True)}


def mb3_recipe(image: np.ndarray) -> np.ndarray:
    """MODEL_CARD.md: `Image.fromarray(rgb).resize((512, 512), Image.BILINEAR)` as float 0..255."""
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((512, 512), Image.Resampling.BILINEAR), np.float64)


def fed_pixel_error(pipeline: Pipeline, image: np.ndarray, expected: np.ndarray) -> float:
    """Mean |pixels the echo model behind `pipeline` received - expected|, in grey levels."""
    fed = echo_pixels(pipeline.predict(pipeline.prepare(image)))
    return float(np.abs(fed - expected).mean())


MB3_FAULTS = {
    "mb3-centernet-f32": ["channels swapped (BGR)", "pixels in [0, 1]", "width/height transposed", "nearest resize",
                          "cv2 INTER_LINEAR instead of Pillow BILINEAR"],
    "mb3-centernet-int8": ["channels swapped (BGR)", "pixels in [0, 1]", "width/height transposed", "nearest resize",
                           "cv2 INTER_LINEAR instead of Pillow BILINEAR", "int8 zero point 0 instead of -128"],
}


@pytest.mark.parametrize("card", sorted(MB3_FAULTS))
def test_mb3_card_feeds_the_model_card_pixels(card, echo_models, monkeypatch):
    """RGB, Pillow BILINEAR to 512x512, 0..255 (int8: q = pixel - 128), as MODEL_CARD.md prescribes."""
    pipeline = Pipeline.open(get_card(card), model_path=echo_models[card])
    image = textured_image()
    expected = mb3_recipe(image)
    clean = fed_pixel_error(pipeline, image, expected)
    assert clean <= FED_ERROR_MAX, f"the model received pixels {clean:.2f} grey levels off the card's recipe"
    for fault in MB3_FAULTS[card]:
        broken = measured_with(fault, monkeypatch, lambda: fed_pixel_error(pipeline, image, expected))
        assert broken > FED_ERROR_MAX, f"{fault}: {broken:.3f} grey levels, the check would not see it"


# --------------------------------------------------------------------------------------------------
# NXP's protocol: the pixels of NXP's evaluate.py (cv2.imread, BGR->RGB, cv2.resize INTER_LINEAR, float 0..255)


@pytest.fixture(scope="session")
def nxp_f32_model(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("nxp")
    return make_nxp_tflite(d / "centernet_f32.tflite", False, (0.2, 0.2, 0.6, 0.6), 0, work_dir=d / "saved")


def nxp_fed_error(pipeline: Pipeline, image: np.ndarray) -> float:
    """Mean |pixels the NXP-contract model received - cv2.resize(INTER_LINEAR)|, in grey levels.

    The model's `preprocessed_inputs` output is its input / 127.5 - 1 (MobileNet scaling), read back here.
    """
    fed = (np.asarray(pipeline.predict(pipeline.prepare(image))["preprocessed_inputs"], np.float64)[0] + 1) * 127.5
    return float(np.abs(fed - _cv2_linear(image, 512, 512)).mean())


def _nxp_pipeline(model: Path) -> Pipeline:
    return Pipeline.open(get_card("centernet-mobilenetv2-fpn-512-f32"), model_path=model, protocol="nxp")


def test_nxp_protocol_feeds_cv2_inter_linear_pixels(nxp_f32_model):
    error = nxp_fed_error(_nxp_pipeline(nxp_f32_model), textured_image())
    assert error <= FED_ERROR_MAX, f"the model received pixels {error:.2f} grey levels off cv2 INTER_LINEAR"


def test_nxp_pixel_check_tells_cv2_from_pillow(nxp_f32_model, monkeypatch):
    """The check above passes for a cv2 INTER_LINEAR input path and fails for a Pillow BILINEAR one.

    Both paths are forced by resizing before the harness's prepare, whatever the harness does today.
    """
    pipeline, image = _nxp_pipeline(nxp_f32_model), textured_image()
    as_cv2 = _resize_first(_cv2_linear).patch
    with monkeypatch.context() as m:
        m.setattr(Pipeline, "prepare", as_cv2(Pipeline.prepare))
        assert nxp_fed_error(pipeline, image) <= FED_ERROR_MAX
    for fault in ("Pillow BILINEAR instead of cv2 INTER_LINEAR", "channels swapped (BGR)", "pixels in [0, 1]"):
        broken = measured_with(fault, monkeypatch, lambda: nxp_fed_error(pipeline, image))
        assert broken > FED_ERROR_MAX, f"{fault}: {broken:.3f} grey levels, the check would not see it"


# --------------------------------------------------------------------------------------------------
# Red squares, end to end through `harness eval`

# (width, height, x, y, side) in image pixels: images of the model's aspect (3:2) at 1x, 2x and 3x the model's
# 384x256, each with one square of 64 model-input pixels, away from the borders and the diagonal.
RED_SQUARES = [(768, 512, 128, 192, 128), (384, 256, 256, 64, 64), (1152, 768, 384, 192, 192),
               (768, 512, 512, 64, 128)]
# Every square is found exactly (measured AP 1.000); a fault that hides the red or moves it gives AP 0.
RED_AP_MIN = 0.99


@pytest.fixture(scope="session")
def red_square_world(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("red")
    return make_red_square_tflite(d / "red.tflite"), make_red_square_coco(d / "coco", RED_SQUARES)


def red_square_ap(world: tuple[Path, Path], out: Path) -> float:
    """AP that `harness eval MODEL --decoder ltrb_centernet --coco ROOT` reports for the red-square detector.

    One worker: the faults are planted with monkeypatch in this process, which spawned workers would not see.
    """
    model, coco = world
    record = out / "record.json"
    assert harness_main(["eval", str(model), "--decoder", "ltrb_centernet", "--coco", str(coco), "--workers", "1",
                         "--json", str(record), "--out", str(out), "--quiet"]) == 0
    return float(json.loads(record.read_text())["results"]["stats"]["AP"])


def test_harness_eval_sees_red_squares_upright_in_rgb_0_255(red_square_world, monkeypatch, tmp_path):
    clean = red_square_ap(red_square_world, tmp_path / "clean")
    assert clean >= RED_AP_MIN, f"AP {clean:.3f} on red squares"
    for n, fault in enumerate(("channels swapped (BGR)", "pixels in [0, 1]", "width/height transposed")):
        broken = measured_with(fault, monkeypatch, lambda n=n: red_square_ap(red_square_world, tmp_path / f"f{n}"))
        assert broken < RED_AP_MIN, f"{fault}: AP {broken:.3f}, the check would not see it"
