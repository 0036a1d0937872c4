"""`harness detect`: run a model on a few images, write annotated copies, list what it found.

Board-ready: numpy, Pillow and the model's runtime only (no TensorFlow for a TFLite model, no
matplotlib). The display threshold only filters what is drawn and listed; evaluation never sees it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.common.fileio import write_atomic
from harness.errors import HarnessError
from harness.measure.draw import class_name, draw_boxes, prediction_box
from harness.models.decoders import Detections
from harness.models.pipeline import Pipeline
from harness.scoring.coco import ImageInfo, to_results

# Output formats: Pillow format name and save options.
FORMATS: dict[str, tuple[str, dict[str, Any]]] = {"jpg": ("JPEG", {"quality": 92}), "png": ("PNG", {"optimize": True})}


@dataclass
class ImageResult:
    """One image's detections (all of them, before the display threshold) and where its picture went."""

    path: Path
    width: int
    height: int
    detections: Detections
    model_s: float
    annotated: Path | None = None

    def entries(self, score_threshold: float, names: dict[int, str] | None = None) -> list[dict]:
        """Detections at or above the threshold, best first, in the results format plus the class name."""
        rows = to_results(ImageInfo(0, self.path.name, self.width, self.height), self.detections,
                          score_threshold=score_threshold)
        for r in rows:
            del r["image_id"]
            r["name"] = class_name(r["category_id"], names)
        return sorted(rows, key=lambda r: -r["score"])


def run_detect(pipeline: Pipeline, paths: Sequence[Path]) -> Iterator[tuple[ImageResult, np.ndarray]]:
    """Yield (result, the RGB array it was read as) per image: read, prepare, predict (timed), decode
    (boxes mapped back to the image, letterboxed or not)."""
    for path in paths:
        rgb = pipeline.read(path)
        prepared = pipeline.prepare(rgb)
        t0 = time.perf_counter()
        heads = pipeline.predict(prepared.batch)
        model_s = time.perf_counter() - t0
        h, w = rgb.shape[:2]
        yield ImageResult(path, w, h, pipeline.decode(heads, prepared), model_s), rgb


def annotate(rgb, result: ImageResult, score_threshold: float, names: dict[int, str] | None = None):
    """The picture with the detections at or above the threshold; the best box's label drawn last (on top)."""
    entries = result.entries(score_threshold, names)
    boxes = [prediction_box((x, y, x + bw, y + bh), e["category_id"], e["score"], names)
             for e in reversed(entries) for x, y, bw, bh in [e["bbox"]]]
    return draw_boxes(rgb, boxes)


def save_image_atomic(image, path: Path, fmt: str) -> Path:
    """An annotated picture, written atomically like every other output."""
    pil_format, options = FORMATS[fmt]
    return write_atomic(path, lambda f: image.save(f, pil_format, **options))


def output_names(paths: Sequence[Path], model: str, fmt: str) -> list[str]:
    """`<stem>.<model>.<fmt>` per image, made unique when two inputs share a stem."""
    out: list[str] = []
    for p in paths:
        name, n = f"{p.stem}.{model}.{fmt}", 1
        while name in out:
            n += 1
            name = f"{p.stem}-{n}.{model}.{fmt}"
        out.append(name)
    return out


def check_settings(card, score_threshold: float, protocol: str | None, fmt: str) -> None:
    """Fail on a bad option before a model is loaded or an image read."""
    if not 0.0 <= score_threshold <= 1.0:
        raise HarnessError(f"--threshold must be between 0 and 1, got {score_threshold}")
    if fmt not in FORMATS:
        raise HarnessError(f"unknown image format {fmt!r}; use one of {', '.join(FORMATS)}")
    card.protocol(protocol)


def detect(pipeline: Pipeline, paths: Sequence[Path], out_dir: Path | None, *, score_threshold: float = 0.3,
           fmt: str = "jpg") -> dict:
    """Run, annotate and save every image; return the JSON-ready summary (detections above the threshold)."""
    card = pipeline.card
    check_settings(card, score_threshold, pipeline.protocol, fmt)
    names = output_names(paths, card.name, fmt)
    images = []
    for (result, rgb), name in zip(run_detect(pipeline, paths), names, strict=True):
        if out_dir is not None:
            result.annotated = save_image_atomic(annotate(rgb, result, score_threshold), out_dir / name, fmt)
        images.append({
            "image": str(result.path), "width": result.width, "height": result.height,
            "annotated": str(result.annotated) if result.annotated else None,
            "model_ms": round(result.model_s * 1e3, 3),
            "detections_total": len(result.detections),
            "detections": result.entries(score_threshold),
        })
    return {"model": card.name, "protocol": pipeline.protocol, "preprocess": pipeline.preprocess.to_dict(),
            "score_threshold": score_threshold, "images": images}


def table_rows(summary: dict) -> list[tuple]:
    """One row per shown detection: image, class, score and the pixel box as corners."""
    rows = []
    for img in summary["images"]:
        name = Path(img["image"]).name
        if not img["detections"]:
            rows.append((name, f"(none >= {summary['score_threshold']:g})", None, None, None, None, None))
        for d in img["detections"]:
            x, y, w, h = d["bbox"]
            rows.append((name, d["name"], f"{d['score']:.3f}", *(f"{v:.1f}" for v in (x, y, x + w, y + h))))
    return rows


TABLE_HEADER = ("image", "class", "score", "xmin", "ymin", "xmax", "ymax")


def detect_and_save(card, mirror, options, paths: Sequence[Path], out_dir: Path, *, score_threshold: float = 0.3,
                    protocol: str | None = None, fmt: str = "jpg") -> tuple[dict, Path]:
    """The detect application: load the model, run every image, save annotated copies and
    detections_<model>.json in `out_dir`; returns (the summary, the JSON's path). Prints nothing."""
    from harness.common.fileio import write_json_atomic
    from harness.models.mirror import root_of

    pipeline = Pipeline.open(card, root_of(mirror), options, protocol)
    result = detect(pipeline, paths, out_dir, score_threshold=score_threshold, fmt=fmt)
    return result, write_json_atomic(out_dir / f"detections_{card.name}.json", result, indent=1)
