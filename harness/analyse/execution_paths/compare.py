"""One model under two execution paths on real images: how far the outputs drift, and the AP of each.

An execution path is how the same model file is run: which TFLite kernels (XNNPACK, the optimized
built-ins without it, the reference kernels), which runtime (ai-edge-litert, tflite-runtime, tf.lite)
and which external delegate. Path A is the yardstick; B's error is measured against it:

- per head: each output as the eval reads it (dequantized), pooled over the images (cosine, max abs
  error, SNR; harness.analyse.tensor_error.ErrorStats);
- per tensor: every op output both paths can show, matched by tensor index (one file, one graph), with
  every tensor preserved (harness.analyse.execution_paths.tensors). Inside an external delegate's partition no
  tensor can be read, so a delegate path is compared at its heads only;
- AP of both over the same labelled images (harness.measure.runner.run_eval, the eval's own scoring).

A second model (`model_b`) runs path B on another file of the same network, e.g. the hub SavedModel
(TensorFlow's kernels) against its TFLite conversion on reference kernels: heads and AP, no tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from harness.analyse.tensor_error import ErrorStats
from harness.errors import HarnessError
from harness.models.backends import BackendOptions
from harness.models.mirror import Mirror, root_of

DEFAULT_IMAGES = 8


@dataclass(frozen=True)
class ExecutionPath:
    """A path as given on the command line, and the backend options it means."""

    spec: str
    options: BackendOptions

    @property
    def external_delegate(self) -> bool:
        return self.options.delegate is not None


# Kinds of path: name -> what it sets, beside the runtime. A delegate is "delegate=LIB".
_KINDS = {
    "default": {},  # the runtime's own choice (XNNPACK for .tflite); the only path of a SavedModel
    "xnnpack": {"kernels": "xnnpack"},
    "builtin": {"kernels": "builtin"},
    "reference": {"kernels": "reference"},
}


def parse_path(spec: str, threads: int | None = None) -> ExecutionPath:
    """KIND[@RUNTIME]: KIND is default, xnnpack, builtin, reference or delegate=LIB (an external delegate .so);
    RUNTIME is ai-edge-litert, tflite-runtime or tf.lite (default: the first found)."""
    kind, _, runtime = spec.partition("@")
    if kind.startswith("delegate="):
        lib = kind.split("=", 1)[1]
        if not Path(lib).is_file():
            raise HarnessError(f"execution path {spec!r}: no delegate library at {lib}")
        fields: dict = {"delegate": lib}
    elif kind in _KINDS:
        fields = dict(_KINDS[kind])
    else:
        raise HarnessError(f"unknown execution path {spec!r}: give KIND[@RUNTIME] with KIND one of "
                           f"{', '.join(_KINDS)} or delegate=LIB")
    return ExecutionPath(spec, BackendOptions(threads=threads, runtime=runtime or None, **fields))


class _Tap:
    """A pipeline whose predict also keeps the heads, so one eval run gives both the AP and the outputs."""

    def __init__(self, pipeline, sink: Callable[[dict[str, np.ndarray]], None]) -> None:
        self._pipeline = pipeline
        self._sink = sink

    def __getattr__(self, name: str):
        return getattr(self._pipeline, name)

    def predict(self, batch):
        heads = self._pipeline.predict(batch)
        self._sink(heads)
        return heads


def compare_paths(model: str, path_a: str, path_b: str, *, mirror: Mirror | None, like: str | None = None,
                  model_b: str | None = None, coco: str | Path | None = None, max_images: int = DEFAULT_IMAGES,
                  threads: int | None = None, tensors: bool = True, progress: bool = True) -> dict:
    """Run `model` under `path_a` and `path_b` (or `model_b` under B) on the first `max_images` labelled
    images; the path_compare record: per-head and per-tensor error of B against A, and both APs.

    A's heads are held in memory until B has run (about 6 MB an image for the mb3 heads).
    """
    from harness.analyse.execution_paths.tensors import error_dict, tensor_errors
    from harness.common import summary
    from harness.measure.evaluate import ground_truth
    from harness.measure.runner import run_eval
    from harness.models.fetch import resolve_model
    from harness.models.pipeline import Pipeline
    from harness.models.zoo import card_for
    from harness.records.schema import new_record

    if max_images < 1:
        raise HarnessError("--max-images must be at least 1")
    paths = (parse_path(path_a, threads), parse_path(path_b, threads))
    cards = (card_for(model, like), card_for(model_b or model, like))
    for card, path in zip(cards, paths, strict=True):
        if card.backend != "tflite" and path.options != BackendOptions(threads=threads):
            raise HarnessError(f"{card.name} is a {card.backend} model: its one execution path is 'default' "
                               f"(kernels, runtimes and delegates are TFLite's), not {path.spec!r}")
    gt = ground_truth(coco, mirror)
    images = gt.images[:max_images]
    files = [resolve_model(card, root_of(mirror)) for card in cards]
    heads_a: list[dict[str, np.ndarray]] = []
    stats: dict[str, ErrorStats] = {}
    seen = [0]

    def compare(heads: dict[str, np.ndarray]) -> None:
        ref = heads_a[seen[0]]
        seen[0] += 1
        for head, value in heads.items():
            if head in ref:
                stats.setdefault(head, ErrorStats()).update(ref[head], value)

    sides: list[dict[str, Any]] = []
    for side, (card, file, path, sink) in enumerate(zip(cards, files, paths, (heads_a.append, compare),
                                                        strict=True)):
        pipeline = Pipeline.open(card, root_of(mirror), path.options, model_path=file)
        with summary.Progress(len(images), f"path {'AB'[side]} {path.spec}", enabled=progress) as bar:
            tap = cast("Pipeline", _Tap(pipeline, sink))  # a Pipeline in all but predict, which keeps the heads
            result, _, timing = run_eval(tap, gt, images, "faster", bar)
        sides.append({"path": path.spec, "model": {"name": card.name, "path": str(file),
                                                    "sha256": pipeline.model_sha256()},
                      "backend": pipeline.describe(), "protocol": pipeline.protocol,
                      "results": {"stats": result.stats, "image_count": result.image_count,
                                  "detection_count": result.detection_count},
                      "timing": timing.to_dict()})
        if side == 0:
            batches = [pipeline.prepare(pipeline.read(gt.image_path(i))).batch for i in images] if tensors else []
    same_file = sides[0]["model"]["sha256"] == sides[1]["model"]["sha256"]
    tensor_note = _tensor_note(tensors, same_file, cards, paths)
    per_tensor = None
    if tensor_note is None:
        per_tensor = tensor_errors(files[0], paths[0].options, paths[1].options, batches,
                                   summary.Progress(len(batches), "tensors", enabled=progress))
    stats_a, stats_b = (s["results"]["stats"] for s in sides)
    return new_record(
        "path_compare", model=sides[0]["model"], paths=sides,
        images={"dir": str(gt.images_dir), "count": len(images), "ids": [i.id for i in images]},
        heads={head: error_dict(s) for head, s in stats.items()},
        ap={k: {"a": stats_a[k], "b": stats_b[k], "delta": stats_b[k] - stats_a[k]}
            for k in ("AP", "AP50", "AP75") if k in stats_a and k in stats_b},
        tensors=per_tensor,
        method={"heads": "the outputs as the eval reads them (dequantized), B against A, pooled over the images",
                "tensors": tensor_note or "every tensor preserved on both paths, op outputs matched by tensor "
                                          "index; XNNPACK then makes one partition per op, so its kernels run "
                                          "op by op (the heads come from the normal, fused run)",
                "ap": f"the eval's scoring over the first {len(images)} images of {gt.path.name}: a check that "
                      "both paths detect alike, too few images for an AP to compare with published ones"})


def _tensor_note(wanted: bool, same_file: bool, cards, paths) -> str | None:
    """Why per-tensor error is not measured, or None when it is."""
    if not wanted:
        return "not asked for (--no-tensors)"
    if not same_file:
        return "the two paths run different model files: only heads compare"
    if cards[0].backend != "tflite":
        return "per-tensor error needs a .tflite model"
    if any(p.external_delegate for p in paths):
        return "an external delegate's tensors cannot be read inside its partitions: only heads compare"
    return None


def format_summary(record: dict) -> str:
    """The comparison as the terminal shows it: paths, AP, heads, and the tensors that drift most."""
    from harness.common import summary

    a, b = record["paths"]
    out = [f"\n{a['model']['name']}: {b['path']} ({b['model']['name']}) against {a['path']} on "
           f"{record['images']['count']} images",
           summary.table(["path", "runtime", "delegate", "ops delegated", "AP", "AP50"],
                         [(s["path"], s["backend"].get("runtime", s["backend"].get("backend")),
                           (s["backend"].get("delegation") or {}).get("delegate") or "-", _coverage(s),
                           s["results"]["stats"].get("AP"), s["results"]["stats"].get("AP50")) for s in (a, b)]),
           summary.table(["head", "cosine", "SNR dB", "max |err|"],
                         [(h, _cos(s["cosine"]), s["snr_db"], f"{s['max_abs_err']:.3g}")
                          for h, s in record["heads"].items()])
           if record["heads"] else "heads: none in common (the two models' outputs differ), AP only"]
    t = record.get("tensors")
    if not t:
        out.append(f"per tensor: {record['method']['tensors']}")
        return "\n".join(out)
    out.append(f"per tensor: {t['compared']} op outputs compared, {t['identical']} identical; lowest SNR:")
    rows = {r["index"]: r for r in t["rows"]}
    out.append(summary.table(["op", "type", "tensor", "cosine", "SNR dB", "max |err|"],
                             [(rows[i]["op_index"], rows[i]["op"], rows[i]["name"][:50], _cos(rows[i]["cosine"]),
                               rows[i]["snr_db"], f"{rows[i]['max_abs_err']:.3g}") for i in t["worst"]]))
    return "\n".join(out)


def _cos(value: float | None) -> str:
    return "-" if value is None else f"{value:.6f}"


def _coverage(side: dict) -> str:
    cov = side["backend"].get("delegation")
    return f"{cov['delegated_ops']}/{cov['model_ops']}" if cov else "-"


__all__ = ["DEFAULT_IMAGES", "ExecutionPath", "compare_paths", "format_summary", "parse_path"]
