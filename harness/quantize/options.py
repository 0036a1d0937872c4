"""What the quantize and compare quant options mean: the calibration set, the input size, the layers kept
in float, and the quantize run built from them.

Kept apart from the converter (harness.quantize.convert) so that the command line stays thin: the CLI
parses, this module turns options into a calibration set and a plan, the converter converts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


@dataclass(frozen=True)
class CalibrationOptions:
    """--calib DIR and how to draw from it; None fields take the recipe's value, else the default."""

    calib: str | None = None
    calib_list: str | None = None
    recipe: str | None = None
    count: int | None = None
    seed: int | None = None
    draw: str | None = None
    resize: str | None = None


def calibration_set(opts: CalibrationOptions, size: tuple[int, int], dtype: str = "float32"):
    """The calibration set the options describe (a recipe's settings, overridden by explicit options);
    None without --calib."""
    from harness.quantize.calibration import draw_calibration
    from harness.quantize.modes import get_recipe

    recipe = get_recipe(opts.recipe) if opts.recipe else None
    if opts.calib is None:
        if opts.calib_list:
            raise HarnessError("--calib-list names files of a directory: give it with --calib DIR")
        return None

    def pick(value: Any, attr: str, default: Any) -> Any:
        return value if value is not None else (getattr(recipe, attr) if recipe else default)

    return draw_calibration(opts.calib, size=size, count=pick(opts.count, "count", 100),
                            draw=pick(opts.draw, "draw", "shuffle"), seed=pick(opts.seed, "seed", 0),
                            resize=pick(opts.resize, "resize", "bilinear"), list_file=opts.calib_list, dtype=dtype)


def input_size(shape: Sequence[int | None], option: str | None) -> tuple[int, int]:
    """--size HxW, else the SavedModel input's fixed height and width."""
    if option:
        h, sep, w = option.lower().partition("x")
        if not sep or not h.isdigit() or not w.isdigit():
            raise HarnessError(f"--size wants HxW, e.g. 512x512, got {option!r}")
        return int(h), int(w)
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        raise HarnessError(f"the SavedModel's input {list(shape)} has no fixed size: give --size HxW")
    return int(shape[1]), int(shape[2])


def float_layers(names: Sequence[str], from_file: str | None, top: int = 10, rank: str = "share") -> list[str]:
    """Layer names to keep in float: `names`, plus a text file's lines or a compare quant record's top layers."""
    out = list(names)
    if from_file:
        path = Path(from_file)
        try:
            text = path.read_text()
        except OSError as exc:
            raise HarnessError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            rec = json.loads(text)
        except json.JSONDecodeError:
            rec = None
        # Only the layer ranking is read, and tests/test_quantize.py feeds a bare {"kind", "layers"} object:
        # not validated as a run record (harness.records.reader.read_record would refuse it).
        if isinstance(rec, dict) and rec.get("kind") == "quant_compare":
            ranked = sorted((r for r in rec.get("layers", []) if r.get(rank)), key=lambda r: -r[rank])
            out += [r["name"] for r in ranked[:top]]
        else:
            out += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return list(dict.fromkeys(out))


@dataclass
class QuantizePlan:
    """Everything a conversion needs, decided before TensorFlow spends minutes on it."""

    saved_model: str
    output: str
    mode: Any  # harness.quantize.convert.Mode
    calibration: Any = None  # harness.quantize.convert.Calibration
    overlap: dict | None = None  # calibration images that are also evaluation images
    eval_dir: Path | None = None
    float_layers: list[str] = field(default_factory=list)
    float_ops: list[str] = field(default_factory=list)
    recipe: str | None = None

    @property
    def sidecar(self) -> Path:
        """Where the record of how the model was made goes: beside it, MODEL.tflite.json."""
        from harness.quantize.sidecar import sidecar_path

        return sidecar_path(self.output)

    @property
    def overlap_names(self) -> list[str]:
        if not self.overlap:
            return []
        return sorted(set(self.overlap["by_name"]) | set(self.overlap["by_content"]))


def plan_quantize(saved_model: str, output: str, *, mode: str | None, calibration: CalibrationOptions,
                  size: str | None = None, eval_dir: Path | None = None, layers: Sequence[str] = (),
                  layers_from: str | None = None, float_top: int = 10, float_rank: str = "share",
                  ops: Sequence[str] = ()) -> QuantizePlan:
    """Check the options against the SavedModel and draw the calibration set (no conversion yet)."""
    from harness.quantize.calibration import calibration_overlap
    from harness.quantize.convert import saved_model_input
    from harness.quantize.modes import get_mode, get_recipe

    recipe = get_recipe(calibration.recipe) if calibration.recipe else None
    chosen = get_mode(mode or (recipe.mode if recipe else "int8"))
    shape, dtype = saved_model_input(saved_model)
    cal = calibration_set(calibration, input_size(shape, size), dtype) if chosen.calibrated else None
    if chosen.calibrated and cal is None:
        raise HarnessError(f"mode {chosen.name} needs calibration images: --calib DIR (and --calib-list FILE to "
                           "replay a list)")
    overlap = calibration_overlap(cal, eval_dir) if cal is not None and eval_dir is not None else None
    return QuantizePlan(saved_model, output, chosen, cal, overlap, eval_dir,
                        float_layers(layers, layers_from, float_top, float_rank), list(ops), calibration.recipe)


def run_quantize(plan: QuantizePlan) -> dict:
    """Convert, write the .tflite and its sidecar record (MODEL.tflite.json); return the record."""
    from harness.common.fileio import write_json_atomic
    from harness.quantize.convert import quantize_saved_model
    from harness.records.schema import new_record

    body = quantize_saved_model(plan.saved_model, plan.output, plan.mode.name, plan.calibration,
                                  float_layers=plan.float_layers, float_ops=plan.float_ops, recipe=plan.recipe,
                                  overlap=plan.overlap)
    record = new_record("quantize", **body)
    write_json_atomic(plan.sidecar, record, indent=1)
    return record


def run_replay(plan_file: str | Path, output: str | Path, *, allow_version_drift: bool = False) -> dict:
    """`harness quantize --plan PLAN.json --out FILE`: the plan's model, byte for byte; its quantize record
    (written beside it as FILE.json)."""
    from harness.common.fileio import write_json_atomic
    from harness.quantize.plan import build, read_plan
    from harness.quantize.sidecar import sidecar_path
    from harness.records.schema import new_record

    record = new_record("quantize", **build(read_plan(plan_file), output, allow_version_drift=allow_version_drift))
    write_json_atomic(sidecar_path(output), record, indent=1)
    return record
