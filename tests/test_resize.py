"""The numpy resizes against the libraries they replay: OpenCV, TensorFlow, Pillow, and NXP's own arrays.

Expected values come from outside harness: cv2.resize / tf.image.resize / PIL on the same arrays, and
the oracle arrays NXP's load_image produced from real val2017 images.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from oracle_paths import need, oracle_dir
from PIL import Image, ImageOps

from harness.errors import HarnessError
from harness.models.preprocess import (
    PRESETS,
    Preprocess,
    apply_exif_orientation,
    apply_preprocess,
    boxes_to_image,
    exif_orientation,
    letterbox_size,
    read_rgb_oriented,
)
from harness.models.resize import (
    RESIZE_METHODS,
    get_resize,
    resize,
    resize_cv2_linear,
    resize_nearest,
    resize_pillow,
    resize_tf_bilinear,
    resize_tf_nearest,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# (src h, src w, dst h, dst w): up and down, non-square, exact 2x (OpenCV's INTER_AREA shortcut),
# 1-pixel sources and targets, the seed models' 512x512 from COCO-like sizes.
SIZES = [(480, 640, 512, 512), (640, 427, 512, 512), (333, 500, 512, 512), (2000, 3000, 512, 512),
         (1, 1, 512, 512), (1, 7, 5, 3), (7, 1, 3, 5), (5, 7, 1, 1), (100, 100, 50, 50), (101, 99, 50, 50),
         (64, 48, 128, 96), (10, 10, 33, 17), (3, 3, 2, 2), (512, 512, 128, 128), (37, 53, 11, 290)]


def random_sizes(n: int, seed: int) -> list[tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    return [tuple(int(v) for v in rng.integers(1, 300, 4)) for _ in range(n)]


def image(h: int, w: int, c: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)


@pytest.mark.parametrize("channels", [3, 1, 4])
def test_cv2_linear_is_bit_exact_with_opencv(channels: int) -> None:
    cv2 = need("cv2")
    worst, cases = 0, SIZES + random_sizes(40, channels)
    for i, (h, w, oh, ow) in enumerate(cases):
        a = image(h, w, channels, i)
        if channels == 1:
            a = a[:, :, 0]
        ref = cv2.resize(a, (ow, oh), interpolation=cv2.INTER_LINEAR)
        got = resize_cv2_linear(a, ow, oh)
        assert got.shape == ref.shape and got.dtype == np.uint8
        worst = max(worst, int(np.abs(got.astype(int) - ref.astype(int)).max()))
    print(f"cv2-linear vs cv2.resize INTER_LINEAR, {len(cases)} sizes, {channels} ch: max |diff| {worst}")
    assert worst == 0


def test_cv2_linear_on_smooth_and_extreme_images() -> None:
    """Saturated and smooth images (where rounding, not noise, decides each value) also match exactly."""
    cv2 = need("cv2")
    yy, xx = np.mgrid[0:97, 0:131]
    smooth = np.stack([(xx * 255 // 130), (yy * 255 // 96), ((xx + yy) % 256)], axis=2).astype(np.uint8)
    for a in (smooth, np.full((50, 70, 3), 255, np.uint8), np.zeros((50, 70, 3), np.uint8)):
        for ow, oh in ((512, 512), (31, 17), (131 * 3, 97 * 2)):
            np.testing.assert_array_equal(resize_cv2_linear(a, ow, oh),
                                          cv2.resize(a, (ow, oh), interpolation=cv2.INTER_LINEAR))


def test_cv2_linear_reproduces_nxp_load_image(mirror) -> None:
    """Pillow decode + resize_cv2_linear against NXP's own arrays (cv2.imread, BGR->RGB, cv2.resize 512).

    The decode difference (Pillow's libjpeg vs OpenCV's) is measured on its own, with OpenCV.
    """
    cv2 = need("cv2")
    odir = oracle_dir("nxp-evaluate-py")
    meta = json.loads((odir / "expected.json").read_text())["preprocessing"]
    assert len(meta["images"]) == 6
    for entry in meta["images"]:
        ref = np.load(odir / entry["array"])["image"]
        assert ref.shape == (1, 512, 512, 3) and ref.dtype == np.uint8
        path = mirror / entry["file"]
        pil = np.asarray(Image.open(path).convert("RGB"))
        cvd = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        decode = np.abs(pil.astype(int) - cvd.astype(int))
        got = apply_preprocess(pil, PRESETS["nxp"])
        diff = np.abs(got.batch.astype(int) - ref.astype(int))
        old = np.abs(resize_pillow(pil, 512, 512).astype(int) - ref[0].astype(int))
        print(f"{entry['file']} {pil.shape[1]}x{pil.shape[0]}: decode Pillow vs cv2 max {decode.max()} "
              f"mean {decode.mean():.4f}; ours vs NXP max {diff.max()} mean {diff.mean():.5f}; "
              f"pillow-bilinear vs NXP max {old.max()} mean {old.mean():.3f}")
        assert got.true_shape == (512, 512)
        assert diff.max() <= 1
        assert diff.mean() < 0.01


@pytest.mark.parametrize("half_pixel", [True, False], ids=["tf2", "tf1"])
def test_tf_bilinear_matches_tensorflow(half_pixel: bool) -> None:
    tf = need("tensorflow")
    worst, cases = 0.0, SIZES[:4] + SIZES[5:] + random_sizes(30, 7)
    for i, (h, w, oh, ow) in enumerate(cases):
        a = image(h, w, 3, 100 + i)
        if half_pixel:
            ref = tf.image.resize(a, (oh, ow), method="bilinear", antialias=False).numpy()
        else:
            ref = tf.compat.v1.image.resize_bilinear(a[None], (oh, ow), align_corners=False,
                                                     half_pixel_centers=False).numpy()[0]
        got = resize_tf_bilinear(a, ow, oh, half_pixel_centers=half_pixel)
        assert got.dtype == np.float32 and got.shape == ref.shape
        worst = max(worst, float(np.abs(got - ref).max()))
    print(f"tf-bilinear (half_pixel_centers={half_pixel}) vs TensorFlow, {len(cases)} sizes: max |diff| {worst}")
    assert worst <= 1e-3  # float32 rounding at most; measured 0


def test_tf_bilinear_on_float_input() -> None:
    tf = need("tensorflow")
    a = np.random.default_rng(3).normal(size=(23, 41, 3)).astype(np.float32)
    np.testing.assert_allclose(resize_tf_bilinear(a, 64, 9), tf.image.resize(a, (9, 64)).numpy(), atol=1e-6)


def test_nearest_matches_pillow_opencv_and_tf() -> None:
    cv2, tf = need("cv2"), need("tensorflow")
    for i, (h, w, oh, ow) in enumerate(SIZES + random_sizes(30, 11)):
        a = image(h, w, 3, 200 + i)
        got = resize_nearest(a, ow, oh)
        np.testing.assert_array_equal(got, np.asarray(Image.fromarray(a).resize((ow, oh), Image.NEAREST)))
        np.testing.assert_array_equal(got, cv2.resize(a, (ow, oh), interpolation=cv2.INTER_NEAREST_EXACT))
        np.testing.assert_array_equal(resize_tf_nearest(a, ow, oh),
                                      tf.image.resize(a, (oh, ow), method="nearest").numpy())


def test_pillow_bilinear_antialiases_when_shrinking() -> None:
    """A 1-pixel checkerboard shrunk 3x: Pillow averages it to grey; the two-tap methods sample single
    pixels (positions 3d + 1 exactly) and keep pure black and white, i.e. they alias."""
    board = ((np.indices((63, 63)).sum(axis=0) % 2) * 255).astype(np.uint8)
    a = np.repeat(board[:, :, None], 3, axis=2)
    pil = resize(a, 21, 21, "pillow-bilinear")
    assert np.abs(pil.astype(int) - 128).max() <= 2
    for method in ("cv2-linear", "tf-bilinear", "nearest"):
        assert set(np.unique(resize(a, 21, 21, method))) == {0, 255}, method


def test_registry_names_and_errors() -> None:
    assert {"pillow-bilinear", "cv2-linear", "tf-bilinear", "tf1-bilinear", "nearest", "tf-nearest"} <= set(
        RESIZE_METHODS)
    assert get_resize("bilinear").name == "pillow-bilinear"  # InputSpec's old name
    with pytest.raises(HarnessError, match="unknown resize method 'area'"):
        get_resize("area")
    with pytest.raises(HarnessError, match="uint8"):
        resize_cv2_linear(np.zeros((4, 4, 3), np.float32), 2, 2)
    with pytest.raises(HarnessError, match="must be >= 1"):
        resize_cv2_linear(np.zeros((4, 4, 3), np.uint8), 0, 2)


# --------------------------------------------------------------------------------------------------
# Letterbox and the Preprocess description


@pytest.mark.parametrize(("hw", "expected"), [
    ((480, 640), (384, 512)), ((640, 427), (512, 342)), ((333, 500), (341, 512)),  # 340.99 -> 341
    ((512, 512), (512, 512)), ((1, 3000), (1, 512)), ((2000, 3000), (341, 512)),
])
def test_letterbox_size_by_hand(hw: tuple[int, int], expected: tuple[int, int]) -> None:
    assert letterbox_size(hw, (512, 512)) == expected


def test_letterbox_pads_bottom_right_and_reports_true_shape() -> None:
    a = image(480, 640, 3, 5)
    pp = Preprocess(512, 512, "cv2-linear", "letterbox", pad_value=0)
    p = apply_preprocess(a, pp)
    assert p.batch.shape == (1, 512, 512, 3) and p.batch.dtype == np.float32
    assert p.true_shape == (384, 512) and p.input_shape == (512, 512) and p.image_shape == (480, 640)
    np.testing.assert_array_equal(p.batch[0, :384], resize_cv2_linear(a, 512, 384).astype(np.float32))
    assert not p.batch[0, 384:].any()
    q = apply_preprocess(a.transpose(1, 0, 2).copy(), Preprocess(512, 512, "nearest", "letterbox", pad_value=114,
                                                                 dtype="uint8"))
    assert q.true_shape == (512, 384) and q.batch.dtype == np.uint8
    assert (q.batch[0, :, 384:] == 114).all()


def test_letterbox_boxes_map_back_to_the_image() -> None:
    p = apply_preprocess(image(480, 640, 3, 6), Preprocess(512, 512, "nearest", "letterbox"))
    # A box over the whole content (0..384 rows of 512) is the whole image.
    np.testing.assert_allclose(boxes_to_image(np.array([[0, 0, 0.75, 1.0]]), p), [[0, 0, 1, 1]])
    stretched = apply_preprocess(image(480, 640, 3, 6), Preprocess(512, 512, "nearest"))
    np.testing.assert_allclose(boxes_to_image(np.array([[0.1, 0.2, 0.3, 0.4]]), stretched), [[0.1, 0.2, 0.3, 0.4]])


def test_preprocess_channels_scaling_and_record() -> None:
    a = image(20, 30, 3, 8)
    pp = Preprocess(10, 15, "tf-bilinear", channels="bgr", mean=(1.0, 2.0, 3.0), std=(2.0, 2.0, 2.0))
    p = apply_preprocess(a, pp)
    ref = (resize_tf_bilinear(a, 15, 10)[:, :, ::-1] - np.array([1, 2, 3], np.float32)) / 2
    np.testing.assert_allclose(p.batch[0], ref, rtol=1e-6)
    d = pp.to_dict()
    assert d["resize"] == "tf-bilinear" and d["channels"] == "bgr" and d["mean"] == [1.0, 2.0, 3.0]
    assert json.loads(json.dumps(d)) == d
    any_size = apply_preprocess(a, Preprocess(None, None, dtype="uint8"))
    assert any_size.batch.shape == (1, 20, 30, 3) and any_size.true_shape == (20, 30)
    # A float resize fed to a uint8 model is rounded, not truncated.
    u = apply_preprocess(a, Preprocess(10, 15, "tf-bilinear", dtype="uint8"))
    np.testing.assert_array_equal(u.batch[0], np.clip(np.rint(resize_tf_bilinear(a, 15, 10)), 0, 255))


@pytest.mark.parametrize("kwargs", [
    {"resize": "area"}, {"aspect": "crop"}, {"channels": "gbr"}, {"dtype": "int8"}, {"height": None},
    {"std": (1.0, 0.0, 1.0)}, {"dtype": "uint8", "mean": (127.5, 127.5, 127.5)},
])
def test_preprocess_rejects_bad_descriptions(kwargs: dict) -> None:
    with pytest.raises(HarnessError):
        Preprocess(**kwargs)


# --------------------------------------------------------------------------------------------------
# EXIF orientation


def _jpeg_with_orientation(path, rgb: np.ndarray, orientation: int) -> None:
    im = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.save(path, quality=95, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_and_cv2_imread(tmp_path, orientation: int) -> None:
    """cv2.imread applies EXIF orientation by default; read_rgb_oriented(exif=True) gives its pixels."""
    cv2 = need("cv2")
    rgb = image(24, 40, 3, 9)
    rgb[:8, :8] = 255  # a corner marker so that every orientation is distinguishable
    f = tmp_path / f"o{orientation}.jpg"
    _jpeg_with_orientation(f, rgb, orientation)
    assert exif_orientation(f) == orientation
    stored = read_rgb_oriented(f, exif=False)
    assert stored.shape == (24, 40, 3)
    upright = read_rgb_oriented(f, exif=True)
    with Image.open(f) as im:
        np.testing.assert_array_equal(upright, np.asarray(ImageOps.exif_transpose(im).convert("RGB")))
    np.testing.assert_array_equal(upright, cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB))
    if orientation >= 5:
        assert upright.shape == (40, 24, 3)
    with pytest.raises(HarnessError):
        apply_exif_orientation(stored, 9)


@pytest.mark.parametrize("old", ["bilinear", "bicubic", "lanczos", "box", "hamming"])
def test_old_pillow_filter_names_still_resize_as_pillow(old: str) -> None:
    """Records before schema 3 named the card's resize by Pillow filter: each still means that filter."""
    from PIL import Image

    a = np.random.default_rng(7).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    want = np.asarray(Image.fromarray(a).resize((20, 29), getattr(Image.Resampling, old.upper())))
    np.testing.assert_array_equal(resize(a, 20, 29, old), want)
    assert get_resize(old).name == f"pillow-{old}"
