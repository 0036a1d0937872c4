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
