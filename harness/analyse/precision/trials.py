"""The search's trials for real: build a plan's .tflite, time it, price it on the target, score it on COCO.

Each step goes through the layer that owns it: conversion through harness.quantize.plan, AP through the
eval application (harness.measure.evaluate.evaluate), latency through the bench application
(harness.measure.benchmark.benchmark: model-only phase, its stopping rule), the layer ranking through
the accumulated per-layer error `harness compare quant` computes. Built models and AP are cached in the
work directory by the plan's key and the model's hash, so a search stopped half-way resumes cheaply.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.analyse.precision.search import Candidate
from harness.common.fileio import sha256_file, write_json_atomic
from harness.errors import HarnessError
from harness.measure.profiler import StopRule
from harness.models.backends import BackendOptions
from harness.models.mirror import Mirror
from harness.quantize.cost import Price, price
from harness.quantize.plan import Plan, build
from harness.scoring.coco import CocoGroundTruth

RANK_IMAGES = 8  # calibration images the layer ranking runs on


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


@dataclass
class RealTrials:
    """Trials on the host: TFLite through the harness's own eval and bench."""

    work: Path
    target: str
    gt: CocoGroundTruth
    mirror: Mirror | None
    like: str  # the zoo card whose contract (preprocessing, decoder) the built models share
    options: BackendOptions
    latency_rule: StopRule
    cpu_op_budget: int | None = None
    quiet: bool = True

    def __post_init__(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self._ap_cache_file = self.work / "ap_cache.json"
        try:
            self._ap_cache: dict = json.loads(self._ap_cache_file.read_text())
        except (OSError, json.JSONDecodeError):
            self._ap_cache = {}

    def path_for(self, plan: Plan) -> Path:
        return self.work / f"{_slug(plan.name)}-{plan.key()}.tflite"

    def build(self, plan: Plan) -> Path:
        from harness.quantize.sidecar import read_sidecar, sidecar_path
        from harness.records.schema import new_record

        path = self.path_for(plan)
        side = read_sidecar(path)
        if path.is_file() and side and side.get("output", {}).get("sha256") == sha256_file(path):
            return path
        body = build(plan, path, allow_version_drift=True)
        write_json_atomic(sidecar_path(path), new_record("quantize", **body), indent=1)
        return path

    def _card(self, path: Path):
        from harness.models.zoo import card_for_path

        return card_for_path(path, like=self.like)

    def latency(self, path: Path) -> float | None:
        from harness.measure.benchmark import bench_settings, benchmark

        settings = bench_settings(1, self.latency_rule, StopRule(min_count=1, min_duration_s=0.0, max_duration_s=0.0))
        rec = benchmark(path.name, self._card(path), self.mirror, self.options, None, settings)
        p50 = rec["phases"]["model_only"]["stats"].get("p50_s")
        return round(p50 * 1000, 2) if p50 is not None else None

    def price(self, plan: Plan, path: Path, p50_ms: float | None) -> Price:
        # An Ethos-U target keeps Vela's NPU model of each candidate beside it (work/vela/<candidate>/).
        return price(self.target, path, p50_ms=lambda: p50_ms, cpu_op_budget=self.cpu_op_budget,
                     out_dir=self.work / "vela" / path.stem)

    def ap(self, path: Path, images: int | None) -> float:
        """AP (points) of the model on the first `images` validation images (all: None)."""
        return self._ap(path, str(images or "all"), max_images=images)

    def held_out_ap(self, path: Path, after: int) -> float:
        """AP (points) of the model on the validation images after the first `after` (the held-out part)."""
        return self._ap(path, f"after{after}", skip_images=after)

    def _ap(self, path: Path, part: str, **which: Any) -> float:
        from harness.measure.evaluate import evaluate

        key = f"{sha256_file(path)}:{part}:{self.gt.sha256}"
        if key not in self._ap_cache:
            out = self.work / "evals" / path.stem / part
            out.mkdir(parents=True, exist_ok=True)
            rec = evaluate(path.name, self._card(path), self.mirror, self.gt, self.options, **which,
                           output=out, progress=not self.quiet, ci_resamples=0)
            write_json_atomic(out / "eval.json", rec, indent=1)
            self._ap_cache[key] = round(rec["results"]["stats"]["AP"] * 100, 2)
            write_json_atomic(self._ap_cache_file, self._ap_cache, indent=1)
        return self._ap_cache[key]

    def ranking(self, done: list[Candidate], calibration) -> list[str]:
        """Layers of full int8 by their share of the injected error, as compare quant ranks them, measured on
        the first RANK_IMAGES calibration images (never validation images)."""
        from harness.analyse.quant_error.layers import accumulated_errors
        from harness.analyse.quant_error.ranking import FIRST_BAD_SNR_DB, summarize_layers
        from harness.quantize.convert import op_outputs

        refs = {c.reference: c for c in done if c.reference and c.model_path}
        if "float32" not in refs or "int8" not in refs:
            raise HarnessError("the layer ranking needs the float32 and full int8 models built first")
        f_path, q_path = (Path(str(refs[k].model_path)) for k in ("float32", "int8"))  # both built (above)
        cal_batches = [b for _, b in zip(range(RANK_IMAGES), calibration.batches(), strict=False)]
        acc = accumulated_errors(f_path, q_path, cal_batches, self.options.runtime)
        rows = summarize_layers(acc["layers"], acc["input"], FIRST_BAD_SNR_DB)["layers"]
        known = {n for _, n in op_outputs(f_path.read_bytes())}
        ranked = sorted((r for r in rows if r.get("share") and r["name"] in known), key=lambda r: -r["share"])
        names = list(dict.fromkeys(r["name"] for r in ranked))
        write_json_atomic(self.work / "ranking.json", [{"name": r["name"], "op": r["op"], "share": r["share"]}
                                                        for r in ranked], indent=1)
        return names


__all__ = ["RANK_IMAGES", "RealTrials"]
