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
    from harness.models.mirror import Mirror

DEMO_MODELS = ("mb3-centernet-hub", "mb3-centernet-f32", "mb3-centernet-int8", "mb3-centernet-16x8")


@dataclass
class DemoResult:
    records: list[dict] = field(default_factory=list)
    output: Path = Path(".")
    report: object = None  # harness.analyse.report.build's result: .markdown_text, .html


def quant_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    """(float, quantized) TFLite siblings among the models: the pairs compare-quant explains."""
    from harness.models.zoo import get_card

    cards = [get_card(m) for m in models]
    floats = [c for c in cards if c.precision == "float32" and c.backend == "tflite"]
    return [(f.name, q.name) for q in cards if q.precision != "float32" and q.backend == "tflite"
            for f in floats[:1] if f.family == q.family]


def run_demo(mirror: Mirror, models: Sequence[str] = DEMO_MODELS, *, max_images: int | None = None,
             output: Path, report_dir: Path, bench: bool = True, compare_images: int = 8,
             on_record: Callable[[dict], None] = lambda record: None) -> DemoResult:
    """Evaluate (and bench) each model, compare each quantized sibling with its float model, keep every
    record as a file and in a store (output/runs.sqlite), and end with the report."""
    from harness.analyse.comparisons import compare_quant
    from harness.analyse.report.build import build_report
    from harness.common.fileio import write_json_atomic
    from harness.measure.benchmark import bench_settings, benchmark
    from harness.measure.evaluate import evaluate, ground_truth
    from harness.measure.profiler import StopRule
    from harness.models.backends import BackendOptions
    from harness.models.zoo import get_card
    from harness.records.store import RecordStore

    gt = ground_truth(None, mirror)
    settings = bench_settings(3, StopRule(20, 2.0, 30.0), StopRule(10, 1.0, 30.0))
    result = DemoResult(output=output)

    def keep(record: dict, name: str, store: RecordStore) -> None:
        write_json_atomic(output / name, record, indent=1)
        store.add([record])
        result.records.append(record)
        on_record(record)

    with RecordStore(output / "runs.sqlite") as store:
        for name in models:
            keep(evaluate(name, get_card(name), mirror, gt, BackendOptions(), max_images=max_images, output=output,
                          progress=False), f"eval_{name}.json", store)
            if bench:
                keep(benchmark(name, get_card(name), mirror, BackendOptions(), mirror.unlabeled_images, settings),
                     f"bench_{name}.json", store)
        for float_name, quant_name in quant_pairs(models):
            keep(compare_quant(float_name, quant_name, mirror=mirror, max_images=compare_images, progress=False),
                 f"compare_{float_name}_{quant_name}.json", store)
    result.report = build_report(result.records, report_dir, base_dir=output, title="mb3-centernet on the mirror")
    return result
