"""`harness quantize`: one conversion (--out FILE), the budgeted precision search (--max-drop), or a replay (--plan).

Its --out is the .tflite file it writes (harness.cli.paths.FILE_OUTPUTS), not a folder: the record of how it
was made goes beside it (FILE.json).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.options import (
    add_calibration_options,
    add_coco,
    add_images,
    add_json,
    add_like,
    add_mirror,
    add_out,
    add_quiet,
    add_threads,
    calibration_options,
    write_record,
)

NAME = "quantize"
HELP = "quantize a float SavedModel to TFLite: one plan, the cheapest plan within an AP budget, or a replayed plan"


def configure(p: argparse.ArgumentParser) -> None:
    from harness.quantize.cost import TARGETS
    from harness.quantize.modes import MODES

    p.add_argument("saved_model", nargs="?", help="the float SavedModel directory (leave out with --plan)")
    add_out(p, "the .tflite file to write (the chosen one with --max-drop); the record of how it was made goes "
               "to FILE.json (required)", metavar="FILE")
    p.add_argument("--mode", choices=list(MODES), help="int8 (default; NXP's: int8 input, float outputs), 16x8, "
                                                       "dynamic, float32")
    add_calibration_options(p)
    p.add_argument("--size", metavar="HxW", help="calibration image size when the SavedModel's input has none "
                                                 "(default: the SavedModel's)")
    p.add_argument("--float-layers", nargs="+", default=[], metavar="NAME",
                   help="keep these layers (op output tensor names, as `harness compare quant` lists them) in "
                        "float (default: none)")
    p.add_argument("--float-layers-from", metavar="FILE",
                   help="layer names to keep in float: a text file (one per line) or a `harness compare quant` "
                        "record (its top layers, see --float-top and --float-rank; default: none)")
    p.add_argument("--float-top", type=int, default=10, help="with a compare record: how many layers (default 10)")
    p.add_argument("--float-rank", choices=("share", "growth_db"), default="share",
                   help="with a compare record: rank by injected error share (default) or by error growth")
    p.add_argument("--float-ops", nargs="+", default=[], metavar="TYPE",
                   help="keep every layer of these op types in float, e.g. MUL ADD (default: none)")
    add_images(p, "the images the model will be evaluated on: calibration images also found here are warned about "
                  "(default: the mirror's coco/val2017)")
    add_mirror(p)
    add_quiet(p, "no progress lines (the conversion's, each candidate's of a search)")
    s = p.add_argument_group("precision search (--max-drop)")
    s.add_argument("--max-drop", type=float, metavar="POINTS",
                   help="search the cheapest plan whose AP is at most POINTS below the float model's (default: "
                        "no search, one conversion)")
    s.add_argument("--target", default="cpu", choices=list(TARGETS),
                   help="what cheap means (default cpu): cpu (measured p50 here), imx93 (Ethos-U65-256: Vela's "
                        "estimate, needs centernet-harness[vela]), imx8mp-vx (modelled; see harness/quantize/cost.py)")
    add_coco(s, "; its val2017 validates the candidates")
    s.add_argument("--allow-overlap", action="store_true",
                   help="allow calibration images that are validation images (the record says so)")
    add_like(s, default="mb3-centernet-f32")
    s.add_argument("--screen-images", type=int, default=40,
                   help="screen each candidate on the first N validation images (0: no screening; default 40)")
    s.add_argument("--screen-margin", type=float, default=3.0, help="AP points of slack when screening (default 3)")
    s.add_argument("--select-images", type=int, metavar="N",
                   help="choose the plan on the first N validation images and report its AP on the rest, which "
                        "chose nothing (default: half; 0: choose and report on all, the AP then flatters the plan)")
    s.add_argument("--max-steps", type=int, default=5, help="plans per ranked family (default 5)")
    s.add_argument("--cpu-ops", type=int, help="NPU targets: ops other than the edge casts that may be left to the "
                                               "CPU (default: the target's, 4)")
    s.add_argument("--no-a16", action="store_true", help="leave out int8 with 16-bit tensors (ai-edge-quantizer)")
    add_threads(s, " for AP and latency")
    s.add_argument("--work-dir", metavar="DIR", help="built candidates and their evals (default: OUT.search)")
    add_json(s, "quant_search")
    p.add_argument("--plan", metavar="PLAN_JSON", help="rebuild a plan (or a quant_search record's chosen one) "
                                                       "byte for byte (default: none)")
    p.add_argument("--allow-version-drift", action="store_true", help="with --plan: build under other versions")


def run(args: argparse.Namespace) -> int:
    from harness.errors import HarnessError

    if args.plan:
        return _replay(args)
    if not args.saved_model or not args.out:
        raise HarnessError("give SAVED_MODEL and --out FILE (or --plan PLAN.json --out FILE)")
    if args.max_drop is not None:
        return _search(args)
    return _convert(args)


def _replay(args: argparse.Namespace) -> int:
    from harness.errors import HarnessError
    from harness.quantize.options import run_replay

    if args.saved_model or not args.out:
        raise HarnessError("--plan PLAN.json rebuilds the plan's own SavedModel: give only --out FILE")
    record = run_replay(args.plan, args.out, allow_version_drift=args.allow_version_drift)
    out = record["output"]
    for line in record.get("version_drift") or []:
        print(f"harness: warning: version differs from the plan's: {line}", file=sys.stderr)
    print(f"{args.out}: {out['bytes']} bytes, sha256 {out['sha256']} (plan {record['plan']['name']})")
    return 0


def _search(args: argparse.Namespace) -> int:
    import dataclasses

    from harness.analyse.precision.run import SearchRequest, run_search
    from harness.cli.options import find_mirror
    from harness.measure.evaluate import ground_truth

    mirror = find_mirror(args)
    opts = calibration_options(args)
    if opts.calib is None and mirror is not None:
        opts = dataclasses.replace(opts, calib=str(mirror.unlabeled_images))
    gt = ground_truth(args.coco, mirror)
    req = SearchRequest(args.saved_model, args.out, args.max_drop, args.target, opts, args.allow_overlap,
                        args.like, args.screen_images or None, args.screen_margin, args.max_steps, args.cpu_ops,
                        threads=args.threads, work_dir=args.work_dir, a16=not args.no_a16,
                        select_images=args.select_images)
    if not args.quiet:
        print(f"searching plans for {args.saved_model} on {args.target}: at most {args.max_drop:g} AP points below "
              f"float on {len(gt.images)} images of {gt.images_dir} ...", flush=True)
    assert gt.images_dir is not None  # ground_truth() always names the images
    record = run_search(req, mirror, gt, gt.images_dir, progress=None if args.quiet else _progress)
    print(format_search(record))
    write_record(args.json, record)
    return 0


def _progress(cand) -> None:
    ap = f"AP {cand.ap:.2f} ({cand.delta_ap:+.2f})" if cand.ap is not None else "no AP"
    print(f"  {cand.name}: {cand.status}, {ap}; {cand.reason}", flush=True)


def format_search(record: dict) -> str:
    """The candidates table and the verdict."""
    from harness.common.summary import table

    f = record["float"]
    rows = [(c["name"], c["status"], c["ap"], c["delta_ap"], "-" if c["ap"] is None else c["images"] or "all",
             c["p50_ms"],
             c["size_bytes"], c["cost"], "yes" if c["meets_budget"] else "no", c["reason"][:70])
            for c in record["candidates"]]
    out = [f"\nfloat: AP {f['ap']:.2f}, p50 {f['p50_ms']} ms, {f['size_bytes']} bytes; budget {record['max_drop']:g} "
           f"points on {record['target']} (cost: {_cost_unit(record)})",
           table(["candidate", "status", "AP", "dAP", "images", "p50 ms", "bytes", "cost", "ok", "why"], rows),
           record["search"]["note"], f"search wall time {record['search']['wall_s']:.0f} s"]
    if record["output"]["model"]:
        out.append(f"chosen: {record['chosen']} -> {record['output']['model']}, plan {record['output']['plan']}")
    reported = record.get("reported")
    if reported:
        sel = record["validate"]["select"]["images"]
        out.append(f"candidates' AP above: on {sel} validation images (the ones the choice was made on)")
        out.append(f"reported: {reported['note']}")
    return "\n".join(out)


def _cost_unit(record: dict) -> str:
    """What the cost column is: p50 ms, Vela's estimated ms, or modelled ms (records older than cost_source:
    every NPU figure was modelled)."""
    if record["target"] == "cpu":
        return "p50 ms"
    return f"ms estimated by {record['cost_source']}" if str(record.get("cost_source", "")).startswith("vela") \
        else "modelled ms"


def _convert(args: argparse.Namespace) -> int:
    from harness.models.mirror import Mirror
    from harness.quantize.options import plan_quantize, run_quantize

    mirror = Mirror.find(args.mirror)
    eval_dir = Path(args.images) if args.images else (mirror.val_images if mirror else None)
    plan = plan_quantize(args.saved_model, args.out, mode=args.mode, calibration=calibration_options(args),
                         size=args.size, eval_dir=eval_dir, layers=args.float_layers,
                         layers_from=args.float_layers_from, float_top=args.float_top, float_rank=args.float_rank,
                         ops=args.float_ops)
    cal, hits = plan.calibration, plan.overlap_names
    if hits:
        print(f"harness: warning: {len(hits)} of {len(cal.files)} calibration images are also evaluation images "
              f"in {plan.eval_dir} (e.g. {hits[0]}): AP measured there is flattered", file=sys.stderr)
    if not args.quiet:
        print(f"quantizing {args.saved_model} ({plan.mode.name}"
              + (f", {len(cal.files)} calibration images drawn by {cal.draw}" if cal else "")
              + (f", {len(plan.float_layers)} named layers and op types {args.float_ops or '-'} kept in float"
                 if plan.float_layers or args.float_ops else "") + ") ...", flush=True)
    record = run_quantize(plan)
    out = record["output"]
    print(f"{args.out}: {out['bytes']} bytes, sha256 {out['sha256']}, input {out['input_dtype']}, "
          f"{record['convert_seconds']:.0f} s with TensorFlow {record['tensorflow']}")
    print(f"record: {plan.sidecar}")
    return 0
