"""COCO AP of the mirror's mb3-centernet artifacts by a path that shares no code with the harness.

An outside oracle for `harness eval`: everything between the image file and the COCO stats is written
here again, from the mirror's MODEL_CARD.md alone, with the runtimes and pycocotools called directly:

- reading: Pillow, `Image.open(path).convert("RGB")`;
- input: TFLite artifacts get `resize((512, 512), Image.BILINEAR)` as float32 0..255 (the card's "Preprocessing
  that the float artifacts were checked with"); the int8 artifact gets that array quantized with its input
  tensor's own scale and zero point (the card: scale 1.0, zero point -128); the hub SavedModel gets the
  image's own uint8 pixels at its own size (it resizes inside its graph);
- runtime: `ai_edge_litert.interpreter.Interpreter` through its signature runner (keys images / heatmap /
  wh), `tf.saved_model.load(hub)(uint8 [1,H,W,3])`;
- decode (TFLite heads), as the card's "Decoding the raw heads": 3x3 max-pool peaks on the sigmoid heatmap,
  top 100 over (y, x, class), ltrb distances in 512-input pixels around (4x, 4y), scaled by W/512, H/512;
  the hub model's own detections are only converted from normalised [ymin, xmin, ymax, xmax] to pixels;
- scoring: pycocotools COCO / COCOeval (bbox) over every image of the annotation file.

Usage (what tests/test_real_models.py's constants were measured with):

    python tests/independent_ap.py {hub,f32,int8,16x8} --mirror /work/shared/mirror [--json OUT] [--limit N]

It prints one JSON object: the 12 COCOeval stats, AP and AP50, image count and the versions used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ARTIFACTS = {"hub": "hub", "f32": "raw_f32.tflite", "int8": "raw_int8.tflite", "16x8": "raw_16x8.tflite"}
MODEL_DIR = Path("models") / "mb3-centernet"
INPUT = 512
STRIDE = 4
TOP_K = 100
# The card: class index 0..79 -> official COCO ids in sorted order.
CLASS_IDS = [*range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66), 67, 70,
             *range(72, 83), *range(84, 91)]
assert len(CLASS_IDS) == 80


def load_rgb(path: Path):
    """A Pillow RGB image (the file's stored pixels, no EXIF rotation)."""
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def input_512(image) -> np.ndarray:
    """Pillow bilinear to 512x512 (not keeping the aspect ratio), float32 0..255, [1,512,512,3]."""
    from PIL import Image

    return np.asarray(image.resize((INPUT, INPUT), Image.BILINEAR), dtype=np.float32)[None]


def maxpool3x3(hm: np.ndarray) -> np.ndarray:
    """3x3 max pool, stride 1, SAME padding (the border sees only the cells inside) over [H, W, C]."""
    h, w, _ = hm.shape
    padded = np.pad(hm, ((1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    out = np.full_like(hm, -np.inf)
    for dy in range(3):
        for dx in range(3):
            out = np.maximum(out, padded[dy:dy + h, dx:dx + w])
    return out


def decode_ltrb(heatmap: np.ndarray, wh: np.ndarray, width: int, height: int) -> list[tuple[int, list[float], float]]:
    """The card's decode: (category id, COCO [x, y, w, h] in original-image pixels, score) of the top 100 peaks."""
    hm = heatmap[0]
    _, grid_w, classes = hm.shape
    peak = np.where(hm == maxpool3x3(hm), hm, np.float32(0))
    flat = peak.reshape(-1)  # (y, x, c) order
    order = np.argsort(-flat, kind="stable")[:TOP_K]  # descending, ties: lower index first
    sx, sy = width / INPUT, height / INPUT
    out = []
    for idx in order:
        c = int(idx % classes)
        s = int(idx // classes)
        y, x = s // grid_w, s % grid_w
        left, top, right, bottom = (float(v) for v in wh[0, y, x])
        x1, y1 = (STRIDE * x - left) * sx, (STRIDE * y - top) * sy
        x2, y2 = (STRIDE * x + right) * sx, (STRIDE * y + bottom) * sy
        out.append((CLASS_IDS[c], [x1, y1, x2 - x1, y2 - y1], float(flat[idx])))
    return out


class TFLiteModel:
    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path))
        self.runner = self.interpreter.get_signature_runner()
        detail = self.runner.get_input_details()["images"]
        self.dtype = detail["dtype"]
        self.scale, self.zero_point = detail["quantization"]

    def heads(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if np.issubdtype(self.dtype, np.integer):
            info = np.iinfo(self.dtype)
            batch = np.clip(np.round(batch / self.scale) + self.zero_point, info.min, info.max).astype(self.dtype)
        out = self.runner(images=batch)
        return out["heatmap"], out["wh"]

    def detect(self, image) -> list[tuple[int, list[float], float]]:
        heatmap, wh = self.heads(input_512(image))
        return decode_ltrb(heatmap, wh, image.width, image.height)


class HubModel:
    def __init__(self, path: Path):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        self.tf = tf
        self.model = tf.saved_model.load(str(path))

    def detect(self, image) -> list[tuple[int, list[float], float]]:
        out = self.model(self.tf.constant(np.asarray(image, dtype=np.uint8)[None]))
        n = int(out["num_detections"].numpy()[0])
        boxes = out["detection_boxes"].numpy()[0, :n]
        classes = out["detection_classes"].numpy()[0, :n]
        scores = out["detection_scores"].numpy()[0, :n]
        dets = []
        for (ymin, xmin, ymax, xmax), c, s in zip(boxes, classes, scores, strict=True):
            x1, y1 = float(xmin) * image.width, float(ymin) * image.height
            x2, y2 = float(xmax) * image.width, float(ymax) * image.height
            dets.append((round(float(c)), [x1, y1, x2 - x1, y2 - y1], float(s)))
        return dets


def open_model(kind: str, mirror: Path):
    path = mirror / MODEL_DIR / ARTIFACTS[kind]
    return HubModel(path) if kind == "hub" else TFLiteModel(path)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": sys.version.split()[0]}
    for dist in ("numpy", "pillow", "ai-edge-litert", "tensorflow-cpu", "tensorflow", "pycocotools"):
        with contextlib.suppress(PackageNotFoundError):
            found[dist] = version(dist)
    return found


def measure(kind: str, mirror: Path, limit: int | None = None, progress: bool = False) -> dict:
    """Run artifact `kind` over the mirror's val2017 subset and score it with pycocotools."""
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ann = mirror / "coco" / "annotations" / "instances_val2017.json"
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
    image_ids = sorted(gt.getImgIds())[:limit]
    model = open_model(kind, mirror)
    results = []
    t0 = time.perf_counter()
    for n, image_id in enumerate(image_ids):
        info = gt.loadImgs(image_id)[0]
        image = load_rgb(mirror / "coco" / "val2017" / info["file_name"])
        if image.size != (info["width"], info["height"]):
            raise SystemExit(f"{info['file_name']}: {image.size} but the annotations say "
                             f"{info['width']}x{info['height']}")
        for category_id, bbox, score in model.detect(image):
            results.append({"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score})
        if progress:
            print(f"{kind}: {n + 1}/{len(image_ids)} {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.imgIds = image_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = [float(s) for s in ev.stats]
    return {"artifact": kind, "file": str(MODEL_DIR / ARTIFACTS[kind]), "images": len(image_ids),
            "detections": len(results), "AP": stats[0], "AP50": stats[1], "stats": stats,
            "seconds": round(time.perf_counter() - t0, 1), "versions": versions()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("artifact", choices=sorted(ARTIFACTS))
    p.add_argument("--mirror", required=True, type=Path)
    p.add_argument("--limit", type=int, help="only the first N images by id")
    p.add_argument("--json", type=Path, help="also write the result here")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    result = measure(args.artifact, args.mirror, args.limit, args.progress)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
