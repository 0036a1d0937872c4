"""The two comparisons as applications: latency of two bench records, error of a quantized model.

`compare_latency` reads two bench records (same host, or refused); `compare_quant` runs a float model and
its quantized sibling on the same images and returns the quant_compare record. Neither prints: the
CLI (and the demo) print from what they return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.models.backends import BackendOptions
from harness.models.mirror import Mirror, root_of
from harness.quantize.options import CalibrationOptions
from harness.records.types import BenchRecord


@dataclass
class LatencyComparison:
    """Two bench records of one host and their stats side by side (B over A)."""

    a: BenchRecord
    b: BenchRecord
    phases: dict  # phase -> stat -> {"a", "b", "b_over_a"}

    @property
    def fingerprint(self) -> str:
        return self.a["host"]["fingerprint"]


def compare_latency(a: str | Path, b: str | Path) -> LatencyComparison:
    """Read two bench records and compare them like for like (different hosts are refused)."""
    from harness.measure.bench import compare_records
    from harness.records.reader import read_record

    ra, rb = read_record(a, kind="bench"), read_record(b, kind="bench")
    return LatencyComparison(ra, rb, compare_records(ra, rb))


def compare_quant(float_model: str, quant_model: str, *, mirror: Mirror | None, like: str | None = None,
                  images: str | Path | None = None, max_images: int = 8, saved_model: str | Path | None = None,
                  calibration: CalibrationOptions | None = None, threshold_db: float | None = None,
                  evals: Sequence[str | Path] | None = None, options: BackendOptions | None = None,
                  progress: bool = True) -> dict:
    """Per-head and per-layer error of `quant_model` against `float_model`; the quant_compare record.

    `evals` (the two models' eval records) adds the AP lost per class and size, and the change in each TIDE
    error type with a paired interval (harness.analyse.error_shift); `saved_model` (the
    float SavedModel) adds the QuantizationDebugger's layer-wise error when a calibration set is known.
    """
    from harness.analyse.quant_error.compare import FIRST_BAD_SNR_DB, compare_models, delta_ap
    from harness.models.fetch import resolve_model
    from harness.models.images import list_images
    from harness.models.zoo import ZOO, card_for
    from harness.quantize.calibration import Calibration
    from harness.quantize.convert import saved_model_input
    from harness.quantize.options import calibration_set, input_size
    from harness.quantize.sidecar import read_sidecar
    from harness.records.reader import read_record
    from harness.records.schema import new_record

    float_card = card_for(float_model, like)
    quant_card = card_for(quant_model, like or (float_model if float_model in ZOO else None))
    float_path, quant_path = resolve_model(float_card, root_of(mirror)), resolve_model(quant_card, root_of(mirror))
    if max_images < 1:
        raise HarnessError("--max-images must be at least 1")
    images_dir = Path(images) if images else (mirror.val_images if mirror else None)
    if images_dir is None:
        raise HarnessError("say which images to compare on: --images DIR, or --mirror DIR / $HARNESS_MIRROR")
    eval_records = [read_record(p, kind="eval") for p in evals] if evals else None
    files = list_images([images_dir], max_images)
    sidecar = read_sidecar(quant_path)
    saved = Path(saved_model) if saved_model else None
    cal = None
    if saved is not None:
        if calibration is not None and calibration.calib:
            cal = calibration_set(calibration, input_size(saved_model_input(saved)[0], None))
        elif sidecar and sidecar.get("calibration"):
            cal = Calibration.from_dict(sidecar["calibration"])
    options = options or BackendOptions()
    body = compare_models(float_card, float_path, quant_card, quant_path, files,
                          options=BackendOptions(threads=options.threads, runtime=options.runtime),
                          saved_model=saved, calibration=cal, sidecar=sidecar,
                          threshold_db=FIRST_BAD_SNR_DB if threshold_db is None else threshold_db,
                          quiet=not progress)
    if eval_records and evals:
        body["delta_ap"] = {"float_record": str(evals[0]), "quant_record": str(evals[1]), **delta_ap(*eval_records)}
        from harness.analyse.error_shift import error_shift

        shift = error_shift(eval_records[0], eval_records[1], Path(evals[0]).parent)
        body["errors"] = shift if isinstance(shift, dict) else {"reason": shift}
    return new_record("quant_compare", **body)
