"""`harness quantize --max-drop`: the precision search as one run, returning its quant_search record.

Calibration hygiene first: the calibration images may not be validation images (by name or content)
unless the caller allows it, and then the record says so (as NXP's recipe calibrates on val2017). The
float model's AP is measured on the same validation images as every candidate; the chosen model is
copied to the output path with its plan beside it (OUTPUT.plan.json), replayable with --plan.
Against the winner's curse, the validation images are split in id order: the search selects on the first
part (by default half) and the chosen plan's AP and ΔAP are reported on the rest (`held_out`); with
`select_images=0` both use every image, and the record and the printout say so.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.analyse.precision.search import Budget, Candidate, best, closest, held_out, search
from harness.analyse.precision.space import Space, proposer
from harness.analyse.precision.trials import RealTrials
from harness.common.fileio import write_json_atomic
from harness.errors import HarnessError
from harness.measure.profiler import StopRule
from harness.models.backends import BackendOptions
from harness.models.mirror import Mirror
from harness.quantize.cost import check_target, cost_source
from harness.quantize.options import CalibrationOptions
from harness.scoring.coco import CocoGroundTruth

# The bench's stopping rule, shorter: every candidate is timed, and a 16x8 invoke takes over a second here.
SEARCH_LATENCY_RULE = StopRule(min_count=10, min_duration_s=2.0, max_duration_s=20.0)


@dataclass(frozen=True)
class SearchRequest:
    """What `harness quantize SAVED_MODEL --max-drop POINTS --target T` asks for."""

    saved_model: str
    output: str
    max_drop: float
    target: str = "cpu"
    calibration: CalibrationOptions = field(default_factory=CalibrationOptions)
    allow_overlap: bool = False
    like: str = "mb3-centernet-f32"
    screen_images: int | None = 40
    screen_margin: float = 3.0
    max_steps: int = 5
    cpu_op_budget: int | None = None
    latency_rule: StopRule = field(default_factory=lambda: SEARCH_LATENCY_RULE)
    threads: int | None = None
    work_dir: str | None = None
    a16: bool = True
    select_images: int | None = None  # select on the first N validation images, report on the rest
    # (None: half of them; 0: select and report on all of them)


def _hygiene(cal, val_dir: Path, allow: bool) -> dict:
    from harness.quantize.calibration import calibration_overlap

    ov = calibration_overlap(cal, val_dir)
    hits = sorted(set(ov["by_name"]) | set(ov["by_content"]))
    if hits and not allow:
        raise HarnessError(f"{len(hits)} of {len(cal.files)} calibration images are validation images of {val_dir} "
                           f"(e.g. {hits[0]}): calibrate elsewhere (the mirror's val2017_unlabeled), or pass "
                           "--allow-overlap and the record will say the AP is flattered")
    return {"overlap": bool(hits), "overlap_count": len(hits), "overlap_examples": hits[:5],
            "overlap_allowed": allow, "checked_against": str(val_dir)}


def _variants(cal, opts: CalibrationOptions) -> tuple[tuple[str, dict, str], ...]:
    """Calibrations beyond the main draw: every image of the directory, and another draw of the same count."""
    from harness.quantize.calibration import draw_calibration, glob_names

    n_all = len(glob_names(cal.root))
    out = []
    if n_all > len(cal.files):
        every = draw_calibration(cal.root, size=cal.size, count=n_all, draw="sorted", resize=cal.resize,
                                 dtype=cal.dtype)
        out.append((f"int8 calib{n_all}", every.to_dict(), f"full int8 calibrated on all {n_all} images"))
        other_seed = (cal.seed or 0) + 1
        other = draw_calibration(cal.root, size=cal.size, count=len(cal.files), draw="shuffle", seed=other_seed,
                                 resize=cal.resize, dtype=cal.dtype)
        out.append((f"int8 seed{other_seed}", other.to_dict(), f"full int8, another draw of {len(cal.files)} images"))
    return tuple(out)


def run_search(req: SearchRequest, mirror: Mirror | None, gt: CocoGroundTruth, val_dir: Path,
               progress=None) -> dict:
    """Search, copy the chosen model to the output, write its plan; return the quant_search record."""
    from harness.common.identity import model_sha256
    from harness.quantize.convert import check_saved_model, saved_model_input
    from harness.quantize.options import calibration_set, input_size
    from harness.quantize.plan import Plan
    from harness.records.schema import new_record

    t0 = time.perf_counter()
    check_target(req.target)
    src = check_saved_model(req.saved_model)
    if req.calibration.calib is None:
        raise HarnessError("the search calibrates: --calib DIR (the mirror's val2017_unlabeled by default)")
    shape, dtype = saved_model_input(src)
    cal = calibration_set(req.calibration, input_size(shape, None), dtype)
    hygiene = _hygiene(cal, val_dir, req.allow_overlap)
    source = {"path": str(src.resolve()), "sha256": model_sha256(src)}
    work = Path(req.work_dir) if req.work_dir else Path(f"{req.output}.search")
    trials = RealTrials(work, req.target, gt, mirror, req.like, BackendOptions(threads=req.threads),
                        req.latency_rule, req.cpu_op_budget)
    float_path = trials.build(Plan("float32", "float32", source, note="the float model as TFLite"))
    n_val = len(gt.images)
    select = select_count(req.select_images, n_val)
    n_sel = select or n_val
    screen = req.screen_images if req.screen_images and req.screen_images < n_sel else None
    budget = Budget(req.max_drop, trials.ap(float_path, select), screen,
                    trials.ap(float_path, screen) if screen else None, req.screen_margin, select)
    space = Space(source, cal.to_dict(), _variants(cal, req.calibration), req.max_steps, req.a16)
    candidates = search(proposer(space, lambda done: trials.ranking(done, cal)), trials, budget, progress)
    chosen, near = best(candidates), None
    if chosen is None:
        near = closest(candidates)
    elif chosen.model_path:
        shutil.copyfile(chosen.model_path, req.output)
        write_json_atomic(plan_path(req.output), chosen.plan.to_dict(), indent=1)
    float_row = next((c for c in candidates if c.reference == "float32"), None)
    ids = [i.id for i in gt.images]
    body = {
        "target": req.target,
        "cost_source": cost_source(req.target),  # "measured p50 on this host" | "modelled" | "vela X.Y.Z"
        "max_drop": req.max_drop,
        "validate": {**gt.describe(ids), "screen_images": screen,
                     "screen_margin": req.screen_margin if screen else None,
                     "select": _part(ids[:n_sel], "the first validation images in id order",
                                     "every candidate's AP: screening, the budget, the choice"),
                     "report": (_part(ids[n_sel:], "the validation images after the selection ones",
                                      "the chosen plan's reported AP and its ΔAP vs float (these chose nothing)")
                                if select else _part(ids, "the same images as the selection (no split)",
                                                     "the chosen plan's reported AP: flattered by its selection"))},
        "calibration": {**cal.to_dict(), **hygiene},
        "float": {"ap": budget.float_ap, "p50_ms": float_row.p50_ms if float_row else None,
                  "size_bytes": float_path.stat().st_size, "screen_ap": budget.float_screen_ap},
        "candidates": [c.row() for c in candidates],
        "chosen": chosen.name if chosen else None,
        "reported": held_out(chosen, float_path, trials, budget, n_val),
        "closest": near.name if near else None,
        "references": {ref: next((c.name for c in candidates if c.reference == ref), None)
                       for ref in ("float32", "int8", "int16x8")},
        "output": {"model": req.output if chosen else None, "plan": str(plan_path(req.output)) if chosen else None,
                   "work_dir": str(work)},
        "search": {"wall_s": round(time.perf_counter() - t0, 1), "latency_rule": req.latency_rule.to_dict(),
                   "max_steps": req.max_steps, "cpu_op_budget": req.cpu_op_budget,
                   "ranking_file": str(work / "ranking.json"),
                   "note": _note(req.target, chosen, near)},
    }
    return new_record("quant_search", **body)


def select_count(select_images: int | None, n_images: int) -> int | None:
    """How many validation images the search selects on (None: all, no held-out part): half by default;
    0 asks for no split; a split needs at least one image on each side."""
    if select_images is not None and select_images < 0:
        raise HarnessError(f"--select-images is a count of validation images (0: no split), got {select_images}")
    n = (n_images + 1) // 2 if select_images is None else select_images
    return n if 0 < n < n_images else None


def _part(ids: list[int], rule: str, role: str) -> dict:
    """Which validation images a part is: how chosen (in id order), how many, which ids (and their hash)."""
    from harness.common.identity import image_ids_sha256

    return {"rule": rule, "role": role, "images": len(ids), "first_id": ids[0] if ids else None,
            "last_id": ids[-1] if ids else None, "image_ids_sha256": image_ids_sha256(ids), "image_ids": ids}


def plan_path(output: str | Path) -> Path:
    """Where the chosen plan goes: beside the model, OUTPUT.plan.json."""
    return Path(f"{output}.plan.json")


def _note(target: str, chosen: Candidate | None, near: Candidate | None) -> str:
    if chosen is None:
        return (f"no plan in the search space is within budget; closest: {near.name} ({near.delta_ap:+.2f} points)"
                if near else "no plan in the search space is within budget, and none could be scored")
    if target == "cpu" and chosen.reference == "float32":
        return "float32 is the cheapest within budget on this CPU: it is faster here than every quantized plan"
    return f"{chosen.name}: the cheapest plan within budget on {target}"


__all__ = ["SearchRequest", "plan_path", "run_search", "select_count"]
