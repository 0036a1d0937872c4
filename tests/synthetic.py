"""Synthetic COCO roots and synthetic models with exactly the seed models' contracts.

The official weights cannot be downloaded here, so the tests build stand-ins that behave like them at
their interfaces: same input dtype and shape, same output names, shapes and encodings, and the same
conversion recipe. Their "weights" encode known boxes, so a correct pipeline scores AP 1.0 on a
synthetic COCO whose ground truth is those boxes.

Everything below takes boxes NORMALISED as [ymin, xmin, ymax, xmax]: the seed models resize the image
to their input without keeping the aspect ratio, so a normalised box means the same thing in the
model's frame and in every image, whatever its size.

`make_coco` and `render_tfod_heads` need numpy and Pillow only; the model builders import
TensorFlow when called.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.models.zoo import COCO80_IDS

Box = tuple[float, float, float, float]  # normalised [ymin, xmin, ymax, xmax]

# The official names of the 80 COCO categories, in the order of COCO80_IDS.
COCO80_NAMES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)
assert len(COCO80_NAMES) == len(COCO80_IDS) == 80
CATEGORY_NAME = dict(zip(COCO80_IDS, COCO80_NAMES, strict=True))


# --------------------------------------------------------------------------------------------------
# A tiny COCO root


@dataclass(frozen=True)
class ImageSpec:
    """One synthetic image: its size and its objects as (official category id, normalised box)."""

    width: int
    height: int
    objects: Sequence[tuple[int, Box]] = field(default_factory=tuple)


def pixel_xywh(box: Box, width: int, height: int) -> list[float]:
    """A normalised [ymin, xmin, ymax, xmax] box as COCO's absolute [x, y, w, h] in one image."""
    ymin, xmin, ymax, xmax = box
    return [xmin * width, ymin * height, (xmax - xmin) * width, (ymax - ymin) * height]


def make_coco(root: str | Path, specs: Sequence[ImageSpec], first_id: int = 1001) -> Path:
    """Write a COCO root: val2017/*.jpg and annotations/instances_val2017.json with the 80 official categories.

    Image ids start at `first_id` (not 0 or 1, so nothing may assume ids are positions) and file names
    follow COCO's zero-padded pattern. Each JPEG is noise with its boxes drawn in, at the size its spec
    says. Returns the root.
    """
    from PIL import Image

    root = Path(root)
    (root / "val2017").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for n, spec in enumerate(specs):
        image_id = first_id + n
        name = f"{image_id:012d}.jpg"
        pixels = rng.integers(0, 256, (spec.height, spec.width, 3), dtype=np.uint8)
        for category_id, box in spec.objects:
            if category_id not in CATEGORY_NAME:
                raise ValueError(f"{category_id} is not an official COCO category id")
            x, y, w, h = pixel_xywh(box, spec.width, spec.height)
            pixels[int(y):int(y + h), int(x):int(x + w)] = (category_id * 37) % 256
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": category_id,
                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0, "segmentation": [],
            })
        Image.fromarray(pixels).save(root / "val2017" / name, quality=90)
        images.append({"id": image_id, "file_name": name, "width": spec.width, "height": spec.height})
    dataset = {
        "info": {"description": "synthetic COCO for the harness tests"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": CATEGORY_NAME[i], "supercategory": "synthetic"} for i in COCO80_IDS],
    }
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(dataset))
    return root


# --------------------------------------------------------------------------------------------------
# TF OD API CenterNet heads


def render_tfod_heads(objects: Iterable[tuple[int, Box]], *, grid: tuple[int, int] = (128, 128),
                      num_classes: int = 90, peak: float = 8.0, background: float = -8.0,
                      blob: float | None = None, rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Encode boxes as the TF OD API CenterNet heads a perfect model would produce (numpy only).

    `objects` are (class index, normalised box); class index 0..89 is label-map id index + 1. In the
    output grid (the model input / stride), each box's centre (cy, cx) in cells gets:
    `object_center` logit `peak` at cell (floor(cy), floor(cx)) and class index, `background` elsewhere;
    `box/scale` = (h, w) in cells and `box/offset` = (cy - floor(cy), cx - floor(cx)) at that cell.
    `blob` (a logit below `peak`) also lights the 8 neighbours of each centre, each carrying the same
    box, as the Gaussian of a trained model would: a decoder must keep only one of them (3x3 peaks or
    NMS). `rng` fills the other cells' scale and offset with random junk instead of zeros.
    Returns {"object_center": [1,H,W,C], "box/scale": [1,H,W,2], "box/offset": [1,H,W,2]} float32.
    """
    gh, gw = grid
    logits = np.full((1, gh, gw, num_classes), background, np.float32)
    if rng is None:
        scale = np.zeros((1, gh, gw, 2), np.float32)
        offset = np.zeros((1, gh, gw, 2), np.float32)
    else:
        scale = rng.uniform(1, 16, (1, gh, gw, 2)).astype(np.float32)
        offset = rng.uniform(0, 1, (1, gh, gw, 2)).astype(np.float32)
    for class_index, box in objects:
        ymin, xmin, ymax, xmax = (float(v) for v in box)
        cy, cx = (ymin + ymax) / 2 * gh, (xmin + xmax) / 2 * gw
        h, w = (ymax - ymin) * gh, (xmax - xmin) * gw
        y, x = int(np.floor(cy)), int(np.floor(cx))
        cells = [(y, x, peak)]
        if blob is not None:
            cells += [(y + dy, x + dx, blob) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
        for yy, xx, logit in cells:
            if 0 <= yy < gh and 0 <= xx < gw:
                logits[0, yy, xx, class_index] = logit
                scale[0, yy, xx] = (h, w)
                offset[0, yy, xx] = (cy - yy, cx - xx)
    return {"object_center": logits, "box/scale": scale, "box/offset": offset}


# --------------------------------------------------------------------------------------------------
# The models


def import_tf():
    """TensorFlow, imported only by the tests that build models (and quietly)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def hub_outputs(box: Box, class_id: int, score: float, n: int = 100) -> dict[str, np.ndarray]:
    """The constant detection dict of `make_hub_savedmodel`: one real box first, then low-score junk.

    The junk (n - 1 small boxes, scores below 0.05, every label-map id in turn) lies in a strip along
    the image edge farther from the real box, so it never overlaps it.
    """
    boxes = np.zeros((1, n, 4), np.float32)
    boxes[0, 0] = box
    strip = (0.90, 0.97) if (box[0] + box[2]) / 2 < 0.5 else (0.03, 0.10)
    for i in range(1, n):
        x0 = (i - 1) % 33 * 0.03
        boxes[0, i] = (strip[0], x0, strip[1], x0 + 0.025)
    classes = np.zeros((1, n), np.float32)
    classes[0, 0] = class_id
    classes[0, 1:] = (np.arange(1, n) - 1) % 90 + 1
    scores = np.zeros((1, n), np.float32)
    scores[0, 0] = score
    scores[0, 1:] = np.linspace(0.049, 0.001, n - 1)
    return {"detection_boxes": boxes, "detection_classes": classes, "detection_scores": scores,
            "num_detections": np.asarray([n], np.float32)}


def make_hub_savedmodel(directory: str | Path, box: Box, class_id: int, score: float = 0.95,
                        native_sizes: Sequence[tuple[int, int]] | None = None) -> Path:
    """A SavedModel with the TF Hub CenterNet detector contract (tensorflow/centernet/resnet50v2_512x512/1).

    Callable as `m(uint8 [1, H, W, 3])` for ANY H, W (no batching), returning the TF OD API detection
    dict: `detection_boxes` f32 [1,N,4] normalised [ymin, xmin, ymax, xmax], `detection_classes` f32
    [1,N] label-map ids, `detection_scores` f32 [1,N], `num_detections` f32 [1]; with the same outputs
    under a `serving_default` signature whose input is named `input_tensor`. The values are
    `hub_outputs(box, class_id, score)`, times a factor that is 1 for every uint8 image but depends on
    it, so the graph really reads its input (and rejects any other dtype).

    `native_sizes` ((width, height) pairs) makes the model answer its box only for inputs of those
    sizes and a box in the far corner for any other: a harness that resized the images before a
    TF Hub detector (which takes each image at its own size) would then score AP 0.
    """
    tf = import_tf()
    consts = {k: tf.constant(v) for k, v in hub_outputs(box, class_id, score).items()}
    sizes = None if native_sizes is None else tf.constant([(h, w) for w, h in native_sizes], tf.int32)
    elsewhere = tf.constant([[[0.0, 0.0, 0.02, 0.02]]], tf.float32)  # broadcast over every detection

    class HubDetector(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8)])
        def __call__(self, input_tensor):
            one = tf.minimum(tf.reduce_mean(tf.cast(input_tensor, tf.float32)) + 1.0, 1.0)
            out = {k: v * one for k, v in consts.items()}
            if sizes is not None:
                hw = tf.shape(input_tensor)[1:3]
                native = tf.reduce_any(tf.reduce_all(tf.equal(sizes, hw[None]), axis=1))
                out["detection_boxes"] = tf.where(native, out["detection_boxes"], elsewhere)
            return out

    module = HubDetector()
    directory = Path(directory)
    tf.saved_model.save(module, str(directory), signatures={"serving_default": module.__call__.get_concrete_function()})
    return directory


NXP_INPUT = (1, 512, 512, 3)


def make_nxp_tflite(path: str | Path, int8: bool, box: Box, class_index: int, *, work_dir: str | Path | None = None,
                    calibration_images: int = 8) -> Path:
    """A .tflite with the contract of NXP's CenterNet MobileNetV2-FPN export, built with NXP's recipe.

    As in NXP's patched `export_tflite_graph_tf2.py`: a tf.Module whose `inference_fn(image)` (float32
    [1,512,512,3], 0..255) returns the tuple (object_center [1,128,128,90] logits, box/scale
    [1,128,128,2], box/offset [1,128,128,2], extracted_features [1,128,128,24], preprocessed_inputs
    [1,512,512,3]) REVERSED, saved with its concrete function as the signature and converted with
    `TFLiteConverter.from_saved_model`; so the signature output keys are output_0 preprocessed_inputs
    ... output_4 object_center. `int8=True` quantizes like NXP's recipe.sh: full integer with a
    representative dataset, int8 input, float32 outputs.

    The heads are `render_tfod_heads([(class_index, box)], blob=4, rng=...)` times a factor that is 1
    for every image in 0..255 but depends on it (so the converter cannot fold the heads into constant
    outputs, and the int8 model really computes them in int8); the features and preprocessed input
    are computed from the image.
    """
    tf = import_tf()
    path = Path(path)
    heads = render_tfod_heads([(class_index, box)], blob=4.0, rng=np.random.default_rng(1))

    class CenterNetModule(tf.Module):
        @tf.function
        def inference_fn(self, image):
            image = tf.cast(image, tf.float32)
            preprocessed = image / 127.5 - 1.0  # MobileNet preprocessing, in [-1, 1]
            one = tf.minimum(tf.reduce_mean(preprocessed) + 2.0, 1.0)
            features = tf.tile(tf.nn.avg_pool2d(preprocessed, 4, 4, "VALID"), [1, 1, 1, 8])
            detections = (tf.constant(heads["object_center"]) * one, tf.constant(heads["box/scale"]) * one,
                          tf.constant(heads["box/offset"]) * one, features, preprocessed)
            return detections[::-1]

    module = CenterNetModule()
    concrete = module.inference_fn.get_concrete_function(tf.TensorSpec(NXP_INPUT, tf.float32, name="input"))
    saved = Path(work_dir) if work_dir else path.with_name(path.stem + "_saved_model")
    tf.saved_model.save(module, str(saved), signatures=concrete)

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    if int8:
        def representative_data_gen():
            rng = np.random.default_rng(1337)
            for _ in range(calibration_images):
                yield [rng.uniform(0, 255, NXP_INPUT).astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_data_gen
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.float32
        converter.target_spec.supported_types = [tf.int8]
    path.write_bytes(converter.convert())
    return path


# --------------------------------------------------------------------------------------------------
# Pixel-sensitive stand-ins with the mb3-centernet raw-heads contract (../shared/mirror/models/mb3-centernet/
# MODEL_CARD.md): input `images` [1,H,W,3] (float32 0..255, or int8 with scale 1 and zero point -128 like
# raw_int8.tflite), outputs `heatmap` [1,H/4,W/4,80] in [0, 1] and `wh` [1,H/4,W/4,4]. Their heads are known
# functions of the pixels they are fed, so a fault in the harness's input path changes what they answer.

MB3_STRIDE = 4
ECHO_CHANNELS = MB3_STRIDE * MB3_STRIDE * 3  # 48 of the 80 heatmap channels carry the input back


def _convert_mb3_contract(tf, fn, path: Path, height: int, width: int, int8: bool) -> Path:
    """Save `fn(images) -> {"heatmap", "wh"}` with a signature and convert it as raw_*.tflite were converted.

    `int8`: full-integer with int8 input and float32 outputs (NXP's recipe), calibrated on images that
    hold both 0 and 255, so the input quantization is exactly scale 1.0, zero point -128 (q = pixel - 128).
    """
    import tempfile

    module = tf.Module()
    module.f = tf.function(fn, input_signature=[tf.TensorSpec([1, height, width, 3], tf.float32, name="images")])
    with tempfile.TemporaryDirectory() as saved:
        tf.saved_model.save(module, saved, signatures=module.f.get_concrete_function())
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if int8:
            def representative_data_gen():
                rng = np.random.default_rng(1337)
                for _ in range(4):
                    x = rng.integers(0, 256, (1, height, width, 3)).astype(np.float32)
                    x[0, 0, 0], x[0, 0, 1] = 0.0, 255.0
                    yield [x]

            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative_data_gen
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.float32
        path = Path(path)
        path.write_bytes(converter.convert())
    return path


def make_echo_tflite(path: str | Path, *, int8: bool = False, height: int = 512, width: int = 512) -> Path:
    """A mb3-contract .tflite whose heatmap hands back the pixels it was fed.

    `heatmap[0, y, x, :48]` is the input's 4x4 patch at cell (y, x) divided by 255, in
    `tf.nn.space_to_depth` order (channel (dy * 4 + dx) * 3 + c); the other 32 channels are 0. `wh` is
    the first 4 of those 48 channels. `echo_pixels(heads)` reads the [H, W, 3] pixels back (0..255
    float): exactly for float32, to within a grey level for int8 (the heatmap is quantized in steps of
    1/255 there), so a test sees what the harness fed the model after the runtime's own quantization.
    """
    tf = import_tf()

    def fn(images):
        patches = tf.nn.space_to_depth(images * (1.0 / 255.0), MB3_STRIDE)
        heatmap = tf.pad(patches, [[0, 0], [0, 0], [0, 0], [0, 80 - ECHO_CHANNELS]])
        return {"heatmap": heatmap, "wh": patches[..., :4]}

    return _convert_mb3_contract(tf, fn, Path(path), height, width, int8)


def echo_pixels(heads: dict[str, np.ndarray]) -> np.ndarray:
    """The [H, W, 3] float pixels (0..255) an echo model (`make_echo_tflite`) was fed."""
    hm = np.asarray(heads["heatmap"], np.float64)[0, :, :, :ECHO_CHANNELS]
    gh, gw, _ = hm.shape
    s = MB3_STRIDE
    return hm.reshape(gh, gw, s, s, 3).transpose(0, 2, 1, 3, 4).reshape(gh * s, gw * s, 3) * 255.0


RED = (255, 0, 0)


def red_square_ltrb(side: int) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) distances `make_red_square_tflite` answers for a square of `side` pixels.

    Its peak is the cell the `side/4`-cell SAME average pool centres on the square: for an even window
    TF pads (k - 1) // 2 cells before, so the peak sits (k - 1) // 2 cells after the square's first cell.
    """
    before = MB3_STRIDE * ((side // MB3_STRIDE - 1) // 2)
    return before, before, side - before, side - before


def make_red_square_tflite(path: str | Path, *, height: int = 256, width: int = 384, side: int = 64,
                           class_index: int = 0) -> Path:
    """A mb3-contract .tflite that detects pure-red (255, 0, 0) squares of `side` input pixels, and nothing else.

    Per input pixel, redness = (R - G - B) / 255: 1 for pure red, 1/255 for red in [0, 1] units, -1 for
    pure blue (red with its channels swapped), about -0.5 on average over noise. Averaged over each 4x4
    cell, then over a `side/4`-cell window (stride 1, SAME), it is 1 only where the window covers a red
    square exactly and falls off linearly around it, so the square gives one peak. The heatmap of class
    `class_index` is max(0, 2 window - 1): 1 on a clean red square and exactly 0 wherever the window is at
    most half red (so red in [0, 1] units or blue gives no peak at all, not merely a low one that would
    still rank first); `wh` is `red_square_ltrb(side)` everywhere, so the decoded box is the square.
    Any size whose sides are multiples of `side` works; side / 4 must be at least 2.
    """
    tf = import_tf()
    k = side // MB3_STRIDE
    ltrb = np.asarray(red_square_ltrb(side), np.float32)

    def fn(images):
        x = images * (1.0 / 255.0)
        redness = x[..., 0:1] - x[..., 1:2] - x[..., 2:3]
        cells = tf.nn.avg_pool2d(redness, MB3_STRIDE, MB3_STRIDE, "VALID")
        window = tf.nn.avg_pool2d(cells, k, 1, "SAME")
        score = tf.nn.relu(2.0 * window - 1.0)
        heatmap = tf.pad(score, [[0, 0], [0, 0], [0, 0], [class_index, 79 - class_index]])
        one = tf.minimum(tf.reduce_mean(x) + 1.0, 1.0)  # 1 for any image in 0..255, but computed from it
        wh = tf.ones_like(cells) * one * tf.constant(ltrb)
        return {"heatmap": heatmap, "wh": wh}

    return _convert_mb3_contract(tf, fn, Path(path), height, width, int8=False)


def make_red_square_coco(root: str | Path, squares: Sequence[tuple[int, int, int, int, int]],
                         category_id: int = 1, first_id: int = 2001) -> Path:
    """A COCO root whose images are noise with one pure-red square each: (width, height, x, y, side) in pixels.

    The ground truth of each image is its square as category `category_id`. The noise is uniform
    0..255 per channel (redness -0.5 on average over any cell). PNG, so the red reads back exactly.
    """
    from PIL import Image

    root = Path(root)
    (root / "val2017").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    images, annotations = [], []
    for n, (width, height, x, y, side) in enumerate(squares):
        image_id = first_id + n
        name = f"{image_id:012d}.png"
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        pixels[y:y + side, x:x + side] = RED
        Image.fromarray(pixels).save(root / "val2017" / name)
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        annotations.append({"id": n + 1, "image_id": image_id, "category_id": category_id,
                            "bbox": [x, y, side, side], "area": side * side, "iscrowd": 0, "segmentation": []})
    dataset = {"info": {"description": "red squares for the pixel-sensitivity tests"}, "licenses": [],
               "images": images, "annotations": annotations,
               "categories": [{"id": i, "name": CATEGORY_NAME[i], "supercategory": "synthetic"} for i in COCO80_IDS]}
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(dataset))
    return root


# --------------------------------------------------------------------------------------------------
# Planted faults for the model doctor (tests/test_doctor_planted.py): NXP-contract models built from given
# heads, heads whose max-pool peaks come in pairs, and an int8 model whose declared input quantization is
# not the one its graph computes with.


def plateau_heads(objects: Sequence[tuple[int, Box]], *, grid: tuple[int, int] = (128, 128),
                  peak: float = 8.0, blob: float = 4.0) -> dict[str, np.ndarray]:
    """`render_tfod_heads(objects, blob=blob)` with each centre's right-hand neighbour raised to `peak` too.

    That neighbour carries the same box (its offset is measured from its own cell), so the object's
    heat is a two-cell plateau: 3x3 max-pool keeps both cells as peaks at the same score (one true
    positive, one duplicate), while box NMS, whose IoU between the two is 1, keeps one.
    """
    heads = render_tfod_heads(objects, grid=grid, peak=peak, blob=blob, rng=np.random.default_rng(1))
    gh, gw = grid
    for class_index, box in objects:
        ymin, xmin, ymax, xmax = (float(v) for v in box)
        cy, cx = (ymin + ymax) / 2 * gh, (xmin + xmax) / 2 * gw
        y, x = int(np.floor(cy)), int(np.floor(cx)) + 1
        if not x < gw:
            raise ValueError(f"box {box} has its centre in the last column: no room for a plateau")
        heads["object_center"][0, y, x, class_index] = peak
        heads["box/offset"][0, y, x] = (cy - y, cx - x)
    return heads


# The label-map ids (1..90) that COCO 2017 does not define: a model trained on COCO never fires on their channels.
UNDEFINED_LABELMAP_IDS = tuple(i for i in range(1, 91) if i not in CATEGORY_NAME)


def trained_background(heads: dict[str, np.ndarray], *, low: float = -12.0, high: float = -8.0,
                       seed: int = 2) -> dict[str, np.ndarray]:
    """TF OD API heads (`render_tfod_heads`, 90 label-map channels) with a background like a trained model's.

    Every `object_center` logit at or below `high` (the flat background) is redrawn uniformly in [low, high),
    so the background is not one 1.5-million-cell plateau (which every decoder must then scan whole), and the
    channels of UNDEFINED_LABELMAP_IDS are set below `low` - 4, so that no detection carries an id the ground
    truth does not define. Object cells are kept. Returns the heads (changed in place).
    """
    logits = heads["object_center"]
    rng = np.random.default_rng(seed)
    flat = logits <= high
    logits[flat] = rng.uniform(low, high, int(flat.sum())).astype(np.float32)
    logits[..., [i - 1 for i in UNDEFINED_LABELMAP_IDS]] = np.float32(low - 4.0)
    return heads


def _nxp_module(tf, heads: dict[str, np.ndarray], gate):
    """NXP's export module (see `make_nxp_tflite`) whose heads are `heads` times `gate(image)`, a scalar.

    `gate(image) -> (scalar, x)`: x is the [1, h, w, 3] float tensor (0..255) the features and the
    preprocessed input are computed from (the image itself, or what the gate read of it).
    """
    class CenterNetModule(tf.Module):
        @tf.function
        def inference_fn(self, image):
            factor, x = gate(tf.cast(image, tf.float32))
            preprocessed = x / 127.5 - 1.0
            if preprocessed.shape[1] != NXP_INPUT[1]:
                preprocessed = tf.image.resize(preprocessed, NXP_INPUT[1:3], method="nearest")
            features = tf.tile(tf.nn.avg_pool2d(preprocessed, 4, 4, "VALID"), [1, 1, 1, 8])
            detections = (tf.constant(heads["object_center"]) * factor, tf.constant(heads["box/scale"]) * factor,
                          tf.constant(heads["box/offset"]) * factor, features, preprocessed)
            return detections[::-1]

    return CenterNetModule()


def make_nxp_heads_tflite(path: str | Path, heads: dict[str, np.ndarray], *,
                          work_dir: str | Path | None = None) -> Path:
    """A float32 .tflite with the NXP export contract (as `make_nxp_tflite`) whose heads are the given arrays.

    The heads are multiplied by a factor that is 1 for every image in 0..255 but computed from it (as in
    `make_nxp_tflite`), so the model answers `heads` whatever image it is fed, and really reads it.
    """
    tf = import_tf()
    path = Path(path)

    def one(image):
        return tf.minimum(tf.reduce_mean(image / 127.5 - 1.0) + 2.0, 1.0), image

    module = _nxp_module(tf, heads, one)
    concrete = module.inference_fn.get_concrete_function(tf.TensorSpec(NXP_INPUT, tf.float32, name="input"))
    saved = Path(work_dir) if work_dir else path.with_name(path.stem + "_saved_model")
    tf.saved_model.save(module, str(saved), signatures=concrete)
    path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert())
    return path


# Where the noise gate of `make_nxp_gated_int8_tflite` is open: the mean of |pixel / 127.5 - 1| over the pixels it
# reads. Uniform 0..255 noise gives 0.5; a flat grey image 0, a saturated one 1.
GATE_OPEN = (0.25, 0.75)


def make_nxp_gated_int8_tflite(path: str | Path, heads: dict[str, np.ndarray], *,
                               work_dir: str | Path | None = None) -> Path:
    """A full-integer NXP-contract .tflite (int8 input, float32 outputs) that answers `heads` only for images
    that look like photographs or noise, as the graph reads them.

    The graph's first op is a strided slice (every second row and column of the input): an op that moves
    int8 values without requantizing them, so its output tensor, not the input tensor, carries the
    quantization the rest of the graph computes with. From those pixels p (0..255, as the graph reads
    them) the gate is m = mean |p / 127.5 - 1| and the heads are `heads` * clip(3 - 8 |m - 0.5|, 0, 1):
    full for m in GATE_OPEN (uniform noise with a few flat boxes), 0 (every logit 0, every box empty) for an
    image the graph sees as flat grey or saturated. Calibrated, with NXP's recipe, on noise, flat grey and
    saturated images that all hold a 0 and a 255 pixel, so the input quantization is exactly scale 1.0,
    zero point -128 (q = pixel - 128, NXP's formula) and the gate's ranges cover both its states.
    """
    tf = import_tf()
    path = Path(path)
    lo, hi = GATE_OPEN
    half_width, middle = (hi - lo) / 2, (hi + lo) / 2
    slope = 8.0  # from 1 at the edge of GATE_OPEN to 0 at 1/8 beyond it

    def noise_gate(image):
        x = image[:, ::2, ::2, :]  # the first op: a STRIDED_SLICE, int8 in and out, the same bytes
        m = tf.reduce_mean(tf.abs(x / 127.5 - 1.0))
        return tf.clip_by_value(1.0 + slope * half_width - slope * tf.abs(m - middle), 0.0, 1.0), x

    module = _nxp_module(tf, heads, noise_gate)
    concrete = module.inference_fn.get_concrete_function(tf.TensorSpec(NXP_INPUT, tf.float32, name="input"))
    saved = Path(work_dir) if work_dir else path.with_name(path.stem + "_saved_model")
    tf.saved_model.save(module, str(saved), signatures=concrete)

    def representative_data_gen():
        rng = np.random.default_rng(1337)
        for kind in ("noise", "grey", "noise", "saturated"):
            if kind == "noise":
                x = rng.integers(0, 256, NXP_INPUT).astype(np.float32)
            else:
                x = np.full(NXP_INPUT, 128.0 if kind == "grey" else 255.0, np.float32)
            x[0, 0, 0], x[0, 0, 1] = 0.0, 255.0  # the input range is exactly 0..255
            yield [x]

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_data_gen
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.float32
    path.write_bytes(converter.convert())
    return path


def declare_input_quantization(src: str | Path, dst: str | Path, scale: float, zero_point: int) -> Path:
    """A copy of a .tflite whose input tensor DECLARES another (scale, zero point); nothing else changes.

    Only the graph input's quantization record is rewritten (tensorflow.lite.tools.flatbuffer_utils). An op
    that requantizes its input (MUL, CONV_2D, ...) reads that record, so its graph follows the new
    declaration; an op that moves the bytes (STRIDED_SLICE, RESHAPE) hands them on under its own output
    record, so the graph keeps computing with the quantization it was calibrated for.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    import_tf()
    model = flatbuffer_utils.read_model(str(src))
    graph = model.subgraphs[0]
    (index,) = graph.inputs
    quant = graph.tensors[index].quantization
    quant.scale, quant.zeroPoint = [float(scale)], [int(zero_point)]
    flatbuffer_utils.write_model(model, str(dst))
    return Path(dst)
