"""The demo workflow over the mirror: evaluate and bench each model, explain each quantized sibling, report.

An application of the top layer (it uses the measuring wing, the quantization comparison and the
report). It prints nothing: each record is handed to `on_record` as soon as it exists (the CLI prints
it there), and the report is returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `harness --help` builds every parser: keep this module's import light
    from harness.analyse.report.build import Report
    from harness.models.mirror import Mirror
    from harness.records.types import RunRecord

DEMO_MODELS = ("mb3-centernet-hub", "mb3-centernet-f32", "mb3-centernet-int8", "mb3-centernet-16x8")
# (warmup, model-only rule, end-to-end rule) for models whose kernels are slow: the 16x8 model runs on TFLite's
# own kernels (XNNPACK has no 16x8 ones), many times slower than its siblings, so the default rule (20 + 10
# timed runs) would dominate the demo's time. Fewer runs widen its latency interval; the demo says so in its output.
SHORT_BENCH = {"mb3-centernet-16x8": (1, (5, 1.0, 8.0), (3, 1.0, 5.0))}
DEFAULT_BENCH = (3, (20, 2.0, 30.0), (10, 1.0, 30.0))
# Images for the float-vs-quantized layer comparison of a slow model: it runs with every tensor kept and the
# fast kernels off, which for the 16x8 model costs seconds an image (its pair would otherwise take minutes).
SHORT_COMPARE = {"mb3-centernet-16x8": 4}


@dataclass
class DemoResult:
    records: list[RunRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the demo did differently from the commands' defaults
    output: Path = Path(".")
    report: Report | None = None


def quant_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    """(float, quantized) TFLite siblings among the models: the pairs compare quant explains."""
    from harness.models.zoo import get_card

    cards = [get_card(m) for m in models]
    floats = [c for c in cards if c.precision == "float32" and c.backend == "tflite"]
    return [(f.name, q.name) for q in cards if q.precision != "float32" and q.backend == "tflite"
            for f in floats[:1] if f.family == q.family]


def run_demo(mirror: Mirror, models: Sequence[str] = DEMO_MODELS, *, max_images: int | None = None,
             output: Path, report_dir: Path, bench: bool = True, compare_images: int = 8,
             on_record: Callable[[dict], None] = lambda record: None, workers: int | None = None) -> DemoResult:
    """Evaluate (and bench) each model, compare each quantized sibling with its float model, keep every
    record as a file and in a store (output/runs.sqlite), and end with the report.

    Each eval runs `workers` processes (None: `harness eval`'s auto, one per core for a TFLite model): the
    16x8 eval was most of the demo's time with one interpreter."""
    from harness.analyse.report.build import build_report
    from harness.common.fileio import write_json_atomic
    from harness.measure.benchmark import bench_settings, benchmark
    from harness.measure.evaluate import evaluate, ground_truth
    from harness.measure.profiler import StopRule
    from harness.models.backends import BackendOptions
    from harness.models.zoo import get_card
    from harness.records.schema import validate
    from harness.records.store import RecordStore

    gt = ground_truth(None, mirror)

    def settings(name: str):
        warmup, model_only, end_to_end = SHORT_BENCH.get(name, DEFAULT_BENCH)
        return bench_settings(warmup, StopRule(*model_only), StopRule(*end_to_end))

    result = DemoResult(output=output)
    if bench:
        result.notes += [f"{name} was benched with a shorter stopping rule (warmup {w}, model-only {m[0]} runs or "
                         f"{m[2]:g} s, end-to-end {e[0]} runs or {e[2]:g} s): its kernels are slow; `harness bench "
                         f"{name}` measures it at full length" for name, (w, m, e) in SHORT_BENCH.items()
                         if name in models]
    pairs = [(f, q, min(compare_images, SHORT_COMPARE.get(q, compare_images))) for f, q in quant_pairs(models)]
    result.notes += [f"{f} vs {q} was compared layer by layer on {n} images, not {compare_images}: the per-layer run "
                     "of a slow model is slow" for f, q, n in pairs if n < compare_images]

    def keep(record: dict, name: str, store: RecordStore) -> None:
        write_json_atomic(output / name, record, indent=1)
        store.add([record])
        result.records.append(validate(record, name))
        on_record(record)

    with RecordStore(output / "runs.sqlite") as store:
        for name in models:
            keep(evaluate(name, get_card(name), mirror, gt, BackendOptions(), max_images=max_images, output=output,
                          progress=False, workers=workers), f"eval_{name}.json", store)
            if bench:
                keep(benchmark(name, get_card(name), mirror, BackendOptions(), mirror.unlabeled_images,
                               settings(name)), f"bench_{name}.json", store)
        for (float_name, quant_name, _), record in zip(pairs, compare_pairs(pairs, mirror), strict=True):
            keep(record, f"compare_{float_name}_{quant_name}.json", store)
    result.report = build_report(result.records, report_dir, base_dir=output, title="mb3-centernet on the mirror")
    return result


def compare_pairs(pairs: Sequence[tuple[str, str, int]], mirror: Mirror) -> list[dict]:
    """compare quant of each (float, quantized, images) pair, the pairs side by side in processes of their own
    (each comparison runs one single-threaded interpreter at a time, so one per core); records in order."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from harness.common.cores import available_cores

    if len(pairs) < 2 or available_cores() < 2:
        return [_compare_pair(pair, mirror) for pair in pairs]
    with ProcessPoolExecutor(min(len(pairs), available_cores()), mp_context=get_context("spawn")) as pool:
        return list(pool.map(_compare_pair, pairs, [mirror] * len(pairs)))


def _compare_pair(pair: tuple[str, str, int], mirror: Mirror) -> dict:
    from harness.analyse.comparisons import compare_quant

    float_name, quant_name, images = pair
    return compare_quant(float_name, quant_name, mirror=mirror, max_images=images, progress=False)
