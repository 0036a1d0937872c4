"""`harness bench`: the latency run of one model on one host, phase by phase.

Runs on a board with numpy, Pillow and a TFLite runtime only: nothing on this path imports TensorFlow,
pandas or matplotlib (a test checks sys.modules).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.measure.profiler import StopRule, outlier_warning, run_until, summarize, timed
from harness.models.pipeline import Pipeline
from harness.models.preprocess import Preprocess


@dataclass(frozen=True)
class BenchSettings:
    model_only: StopRule = field(default_factory=StopRule)
    end_to_end: StopRule = field(default_factory=lambda: StopRule(min_count=20, min_duration_s=3.0))
    warmup: int = 5
    max_images: int = 32  # distinct real images cycled through


def process_age_s() -> float | None:
    """Seconds since this process started, from the kernel's own start time (Linux)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime"))
        return time.time() - (btime + start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def random_image(spec: Preprocess, rng: np.random.Generator) -> np.ndarray:
    h, w = spec.height or 512, spec.width or 512
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def run_bench(pipeline: Pipeline, images: list[Path] | None, settings: BenchSettings) -> dict:
    """Time first inference, warm-up, model-only steady state and end-to-end; return the record body.

    The pipeline's load time (Pipeline.open) is the load phase; the clock of every other phase is here.
    """
    backend, spec = pipeline.backend, pipeline.preprocess or pipeline.card.input
    rng = np.random.default_rng(0)
    # The first inference comes before the other images are read: time-to-first-inference is what a
    # board's start-up costs, not how long it takes to fill the image cache.
    first = pipeline.read(images[0]) if images else random_image(spec, rng)
    backend.set_input(pipeline.prepare(first).batch)
    first_s = timed(backend.invoke)
    time_to_first = process_age_s()
    backend.read_outputs()
    if images:
        raw = [first] + [pipeline.read(p) for p in images[1:]]
        source = {"kind": "images", "dir": str(images[0].parent), "count": len(images)}
    else:
        raw = [first] + [random_image(spec, rng) for _ in range(3)]
        source = {"kind": "random", "note": "uniform random pixels: no real images were given", "count": len(raw)}
    batches = [pipeline.prepare(im).batch for im in raw]
    warmup = []
    for i in range(settings.warmup):
        backend.set_input(batches[i % len(batches)])
        warmup.append(timed(backend.invoke))

    # Model-only: one staged input, invoke after invoke (benchmark_model's steady state). Re-staging a
    # new image between invokes would add cache misses that belong to the end-to-end phase.
    backend.set_input(batches[0])
    model_samples = run_until(lambda i: timed(backend.invoke), settings.model_only)

    def e2e_step(i: int) -> float:
        t0 = time.perf_counter()
        pipeline.detect(pipeline.read(images[i % len(images)]) if images else raw[i % len(raw)])
        return time.perf_counter() - t0

    e2e_samples = run_until(e2e_step, settings.end_to_end)
    model_stats, e2e_stats = summarize(model_samples), summarize(e2e_samples)
    warnings = [w for w in (outlier_warning("model-only", model_stats), outlier_warning("end-to-end", e2e_stats))
                if w]
    return {
        "input": source,
        "phases": {
            "load_s": pipeline.load_s,
            "first_inference_s": first_s,
            "warmup": {"count": len(warmup), "samples_s": warmup},
            "model_only": {"what": "backend.invoke() on one staged input", "rule": settings.model_only.to_dict(),
                           "stats": model_stats, "samples_s": model_samples},
            "end_to_end": {"what": "read image, decode, resize, set input, invoke, read outputs, decode heads"
                           if images else "resize a random image, set input, invoke, read outputs, decode heads",
                           "rule": settings.end_to_end.to_dict(), "stats": e2e_stats, "samples_s": e2e_samples},
        },
        "time_to_first_inference_s": time_to_first,
        "peak_rss_bytes": peak_rss_bytes(),
        "warnings": warnings,
    }


def peak_rss_bytes() -> int:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb if sys.platform == "darwin" else kb * 1024


def set_affinity(cpus: str | None) -> list[int] | None:
    """Pin the process to a CPU list like "0,2-3"; returns the CPUs now allowed."""
    if cpus is None:
        return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    wanted: set[int] = set()
    try:
        for part in cpus.split(","):
            lo, _, hi = part.partition("-")
            wanted.update(range(int(lo), int(hi or lo) + 1))
        os.sched_setaffinity(0, wanted)
    except (ValueError, OSError) as exc:
        raise HarnessError(f"cannot pin to CPUs {cpus!r}: {exc}") from None
    return sorted(os.sched_getaffinity(0))


def compare_records(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict:
    """Like-for-like latency comparison of two bench records: refused unless the host fingerprints match."""
    fa, fb = a["host"]["fingerprint"], b["host"]["fingerprint"]
    if fa != fb:
        def who(r: Mapping[str, Any]) -> str:
            h = r["host"]
            return f"{h.get('board') or h.get('cpu_model')} x{h.get('cores')} ({h['fingerprint']})"

        raise HarnessError(f"refused: the records come from different hosts, {who(a)} vs {who(b)}; "
                           "latency is only compared like with like (same host fingerprint)")
    out = {}
    for phase in ("model_only", "end_to_end"):
        sa, sb = a["phases"][phase]["stats"], b["phases"][phase]["stats"]
        out[phase] = {k: {"a": sa[k], "b": sb[k], "b_over_a": sb[k] / sa[k] if sa[k] else None}
                      for k in ("p50_s", "p90_s", "p99_s", "mean_s")}
    return out
