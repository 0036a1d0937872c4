"""The bench application: load one model on this host, time it phase by phase, return the bench record.

Board-ready (numpy, Pillow, a TFLite runtime): nothing on this path imports TensorFlow for a .tflite,
nor pandas or matplotlib. It prints nothing; the CLI prints from the record.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.measure.bench import BenchSettings
from harness.measure.profiler import StopRule
from harness.models.backends import BackendOptions
from harness.models.mirror import Mirror, root_of
from harness.models.zoo import ModelCard


def bench_settings(warmup: int, model_only: StopRule, end_to_end: StopRule) -> BenchSettings:
    """Settings from the command's numbers, refusing ones that would measure nothing."""
    if warmup < 0 or model_only.min_count < 1 or end_to_end.min_count < 1:
        raise HarnessError("--warmup must be >= 0 and the minimum counts >= 1")
    return BenchSettings(model_only=model_only, end_to_end=end_to_end, warmup=warmup)


def benchmark(label: str, card: ModelCard, mirror: Mirror | None, options: BackendOptions | None,
              images_dir: Path | None, settings: BenchSettings, cpus: str | None = None) -> dict:
    """Pin (cpus), load and time one model on real images (`images_dir`) or random input (None)."""
    from harness.measure.bench import run_bench, set_affinity
    from harness.models.images import list_images
    from harness.models.pipeline import Pipeline
    from harness.records.schema import new_record

    options = options or BackendOptions()
    affinity = set_affinity(cpus)
    images = list_images([images_dir], settings.max_images) if images_dir else None
    pipeline = Pipeline.open(card, root_of(mirror), options)
    body = run_bench(pipeline, images, settings)
    desc = pipeline.describe()
    settings_rec = {"threads": options.threads, "affinity": affinity, "delegate": options.delegate,
                    "delegate_options": dict(options.delegate_options), "runtime": desc["runtime"],
                    "model_sha256": desc.get("model_sha256"), "warmup": settings.warmup}
    # The end-to-end phase reads, prepares and decodes as the protocol says: the record says how.
    return new_record("bench", model=card.to_dict(), model_label=label, backend=desc, settings=settings_rec,
                      protocol=pipeline.protocol_block(desc), **body)
